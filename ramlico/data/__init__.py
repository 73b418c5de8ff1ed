"""Data: label spaces, data sources (a registry), readers, generated data, transforms, datasets and
the two DataModules (multi-label, single-label) behind one typed interface."""

from ramlico.data.base import RamlicoDataModule
from ramlico.data.classification import ClassificationDataModule, balanced_subset
from ramlico.data.datamodule import MultiLabelDataModule
from ramlico.data.dataset import MultiLabelDataset, check_vocabulary, unknown_labels
from ramlico.data.generated import (
    GENERATED_CLASSES,
    GENERATED_SEEN,
    GENERATED_UNSEEN,
    draw_scene,
    generated_label_space,
    make_generated_classification,
    make_generated_dataset,
)
from ramlico.data.image_folder import (
    IMAGE_SUFFIXES,
    decode_image,
    is_image,
    list_images,
    read_class_names_file,
    read_image_folder,
)
from ramlico.data.labelled_images import (
    ClassificationDataset,
    DatasetImages,
    ImageFiles,
    LabelledImages,
    collate_samples,
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
    read_any_label_file,
    read_coco_file,
    read_coco_instances,
    read_label_file,
    read_ram_json,
)
from ramlico.data.sources import (
    MultiLabelSource,
    SingleLabelSource,
    build_source,
    get_source,
    list_sources,
    register_source,
)
from ramlico.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    HALF_MEAN,
    HALF_STD,
    build_eval_transform,
    build_train_transform,
)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "COCO_EXCLUDED",
    "COCO_SEEN",
    "COCO_UNSEEN",
    "GENERATED_CLASSES",
    "GENERATED_SEEN",
    "GENERATED_UNSEEN",
    "HALF_MEAN",
    "HALF_STD",
    "IMAGE_SUFFIXES",
    "NUS_UNSEEN",
    "ClassificationDataModule",
    "ClassificationDataset",
    "DatasetImages",
    "ImageFiles",
    "LabelSpace",
    "LabelledImages",
    "MultiLabelDataModule",
    "MultiLabelDataset",
    "MultiLabelSource",
    "RamlicoDataModule",
    "Record",
    "SingleLabelSource",
    "balanced_subset",
    "build_eval_transform",
    "build_source",
    "build_train_transform",
    "check_vocabulary",
    "collate_samples",
    "decode_image",
    "draw_scene",
    "generated_label_space",
    "get_source",
    "is_image",
    "list_images",
    "list_sources",
    "make_generated_classification",
    "make_generated_dataset",
    "multi_hot",
    "read_any_label_file",
    "read_class_names_file",
    "read_coco_file",
    "read_coco_instances",
    "read_image_folder",
    "read_label_file",
    "read_nus_label_space",
    "read_nus_wide",
    "read_ram_json",
    "register_source",
    "unknown_labels",
]
