"""ImageNet pixel statistics that pretrained backbones expect, defined once.

Two conventions:
- torchvision's (also Keras' EfficientNet): RGB pixels scaled to 0..1, then
  `(x - IMAGENET_MEAN) / IMAGENET_STD` per channel;
- "caffe" (Keras' VGG and ResNet `preprocess_input`): BGR pixels 0..255 minus
  `IMAGENET_CAFFE_BGR_MEAN`, no scaling. Caffe measured its mean itself: it is close to, not
  exactly, 255 x `IMAGENET_MEAN` reversed, so neither is derived from the other.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, pixels 0..1
IMAGENET_STD = (0.229, 0.224, 0.225)  # RGB, pixels 0..1
IMAGENET_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # BGR, pixels 0..255
