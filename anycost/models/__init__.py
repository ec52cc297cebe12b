"""Model families, one package each; a sub-network is always a config value passed to forward.

- `stylegan2`: the Anycost generator (elastic resolution and channels), its discriminator, checkpoints.
- `i2i`: the ResNet image-to-image generator of GAN Compression as a once-for-all supernet.
- `slimgan`: slimmable DCGAN / SNGAN-ResNet generators (switchable and sliceable conditional BN), their discriminators.
"""
