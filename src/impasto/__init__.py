"""impasto: neural style transfer and image generation built on transfer learning."""

__version__ = "0.1.0"
