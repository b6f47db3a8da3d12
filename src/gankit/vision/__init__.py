"""Pictures made by gradients through pretrained convnets: DeepDream, neural style
transfer, and looking inside a network (activations, filter patterns, Grad-CAM)."""
