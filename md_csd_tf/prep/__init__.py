"""Dataset layouts (FF++, DFD, Celeb-DF v2), face cropping, manifests and the stand-in dataset."""
