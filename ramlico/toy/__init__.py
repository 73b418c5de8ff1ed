"""The toy world: captioned scenes and a tiny CLIP trained on them by this project.

``python -m ramlico.toy.train_clip`` trains ``ramlico-toy-ViT`` from scratch on CPU; the shipped
weights load by name (``CLIPBackbone("ramlico-toy-ViT", pretrained="toy")``, or
``model/backbone=clip_toy`` in the configs). See ``docs/toy_world.md``.
"""
