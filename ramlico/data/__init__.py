"""Data: label spaces, record readers, generated data, transforms, dataset and datamodule."""

from ramlico.data.classification import (
    ClassificationDataModule,
    ClassificationDataset,
    make_generated_classification,
    read_image_folder,
)
from ramlico.data.datamodule import MultiLabelDataModule, read_any_label_file
from ramlico.data.dataset import MultiLabelDataset, check_vocabulary, unknown_labels
from ramlico.data.generated import (
    GENERATED_SEEN,
    GENERATED_UNSEEN,
    draw_scene,
    generated_label_space,
    make_generated_dataset,
)
from ramlico.data.labels import (
    COCO_EXCLUDED,
    COCO_SEEN,
    COCO_UNSEEN,
    NUS_UNSEEN,
    LabelSpace,
    multi_hot,
)
from ramlico.data.nus_wide import read_nus_label_space, read_nus_wide
from ramlico.data.records import (
    Record,
    read_coco_file,
    read_coco_instances,
    read_label_file,
    read_ram_json,
)
from ramlico.data.supervised import SupervisedClassificationDataModule
from ramlico.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    HALF_MEAN,
    HALF_STD,
    build_eval_transform,
    build_train_transform,
)

__all__ = [
    "ClassificationDataModule",
    "ClassificationDataset",
    "make_generated_classification",
    "read_image_folder",
    "CLIP_MEAN",
    "CLIP_STD",
    "COCO_EXCLUDED",
    "COCO_SEEN",
    "COCO_UNSEEN",
    "GENERATED_SEEN",
    "GENERATED_UNSEEN",
    "HALF_MEAN",
    "HALF_STD",
    "NUS_UNSEEN",
    "LabelSpace",
    "MultiLabelDataModule",
    "MultiLabelDataset",
    "Record",
    "SupervisedClassificationDataModule",
    "build_eval_transform",
    "build_train_transform",
    "check_vocabulary",
    "draw_scene",
    "generated_label_space",
    "make_generated_dataset",
    "multi_hot",
    "read_any_label_file",
    "read_coco_file",
    "read_coco_instances",
    "read_label_file",
    "read_nus_label_space",
    "read_nus_wide",
    "read_ram_json",
    "unknown_labels",
]
