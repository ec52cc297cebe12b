"""Data loaders: image folders, rendered emoji, and multi-resolution batches."""

from anycost.data.emoji import EmojiDataset, base_name, find_font, is_head, parse_labels
from anycost.data.image_folder import ImageFolderDataset
from anycost.data.mnist import FashionMNISTDataset, MNIST5kDataset
from anycost.data.pyramid import multires_batch, random_flip

__all__ = ["EmojiDataset", "FashionMNISTDataset", "ImageFolderDataset", "MNIST5kDataset", "base_name", "find_font",
           "is_head", "multires_batch", "parse_labels", "random_flip"]
