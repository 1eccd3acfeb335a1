"""ImageNet pixel statistics that pretrained backbones expect, defined once.

Two conventions of the same numbers (ImageNet's per-channel mean and standard deviation):
- torchvision's (also Keras' EfficientNet): RGB pixels scaled to 0..1, `(x - MEAN) / STD`;
- "caffe" (Keras' VGG and ResNet `preprocess_input`): BGR pixels 0..255, minus `CAFFE_BGR_MEAN`
  (MEAN x 255, reversed), no scaling.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, pixels 0..1
IMAGENET_STD = (0.229, 0.224, 0.225)  # RGB, pixels 0..1
IMAGENET_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # BGR, pixels 0..255
