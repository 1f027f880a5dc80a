"""Sci-Net: a scale-invariant U-Net with Dense Atrous Spatial Pyramid Pooling (DenseASPP).

Written from the description in the project's methods note (Nasrallah, Shukor, Ghandour;
arXiv 2111.06812): an encoder at output stride 16 (its last stage dilated), DenseASPP on
the deepest feature only, and a U-Net decoder whose first block fuses the H/16 skip
without upsampling. smp supplies the encoder, the decoder blocks and the head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DenseASPPLayer(nn.Sequential):
    """1x1 conv to ``mid`` channels, then a 3x3 atrous conv (dilation ``rate``) to ``out`` channels, BN+ReLU each."""

    def __init__(self, in_channels: int, mid: int, out: int, rate: int, dropout: float = 0.0):
        super().__init__(
            nn.Conv2d(in_channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out, 3, padding=rate, dilation=rate, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
            nn.Dropout2d(dropout) if dropout else nn.Identity(),
        )


class DenseASPP(nn.Module):
    """Densely connected atrous layers: layer ``i`` sees the input and all earlier outputs.

    Output = input concatenated with every layer's output: ``in + len(rates) * out`` channels.
    No image-pooling branch and no projection after the stack.
    """

    def __init__(self, in_channels: int, mid: int = 256, out: int = 128, rates: Sequence[int] = (3, 6, 12, 18), dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseASPPLayer(in_channels + i * out, mid, out, r, dropout) for i, r in enumerate(rates)
        )
        self.out_channels = in_channels + len(rates) * out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return torch.cat(feats, dim=1)


class SciNet(nn.Module):
    """Encoder (output stride 16) -> DenseASPP on the deepest feature -> U-Net decoder -> 3x3 head."""

    def __init__(self, encoder: str = "resnet18", in_channels: int = 3, classes: int = 1,
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16), aspp_mid: int = 256, aspp_out: int = 128,
                 rates: Sequence[int] = (3, 6, 12, 18)):
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
        from segmentation_models_pytorch.encoders import get_encoder

        self.encoder = get_encoder(encoder, in_channels=in_channels, depth=5, weights=None, output_stride=16)
        chans = list(self.encoder.out_channels)
        self.aspp = DenseASPP(chans[-1], aspp_mid, aspp_out, rates)
        chans[-1] = self.aspp.out_channels
        self.decoder = UnetDecoder(encoder_channels=chans, decoder_channels=decoder_channels, n_blocks=5)
        self.head = SegmentationHead(decoder_channels[-1], classes, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # eager mode only, as in smp's own models: a traced/exported graph cannot raise it, and under
        # torch.export it would turn the dynamic height/width into multiples of 32 (geoseg.models.export)
        if not (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()) and (h % 32 or w % 32):
            raise RuntimeError(f"Sci-Net needs input sides divisible by 32, got {h}x{w}; pad the input")
        feats = list(self.encoder(x))
        feats[-1] = self.aspp(feats[-1])
        return self.head(self.decoder(feats))
