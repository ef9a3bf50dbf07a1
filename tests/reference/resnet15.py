"""The E2E group's ResNet-15 in PyTorch, as in ML4SCI/E2E (E2E_Regression_Anis_Ismail/
models.py): the reference the C model is checked against, and the model an e2e-ddp
checkpoint loads into (strict=False: the identity blocks' unused `shortcut` convs are
not carried by e2e-ddp)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.downsample = out_channels // in_channels
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=self.downsample, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=self.downsample)

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        residual = self.shortcut(x) if self.downsample > 1 else x
        return F.relu(out + residual)


class ResNet15(nn.Module):
    def __init__(self, in_channels=8, nblocks=3, fmaps=(16, 32), n_scalars=2):
        super().__init__()
        self.fmaps = fmaps
        self.conv0 = nn.Conv2d(in_channels, fmaps[0], kernel_size=7, stride=1, padding=1)
        self.layer1 = nn.Sequential(*[ResBlock(fmaps[0], fmaps[0]) for _ in range(nblocks)])
        self.layer2 = nn.Sequential(ResBlock(fmaps[0], fmaps[1]))
        self.layer3 = nn.Sequential(*[ResBlock(fmaps[1], fmaps[1]) for _ in range(nblocks)])
        self.fc = nn.Linear(fmaps[1] + n_scalars, 1)

    def forward(self, x, scalars):
        x = F.max_pool2d(F.relu(self.conv0(x)), kernel_size=2)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_max_pool2d(x, (1, 1)).flatten(1)
        return self.fc(torch.cat([x, scalars], 1))


def carried_names(model):
    """state_dict keys that e2e-ddp carries, in its arena order."""
    return [k for k in model.state_dict()
            if not (".shortcut." in k and not k.startswith("layer2."))]
