"""HetACUMN's networks: the ResNet-18 encoder (ImageNet or small-image stem), the heads, and
uniform random rotations from torch's generator (see ``hetacumn.py``)."""
import torch
from torch import nn

from ..geometry import so3

# Boxes below this get the small-image encoder stem with ``enc_stem`` "auto" (see ``stem_for_box``).
SMALL_STEM_BELOW = 128


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """ResNet-18 without its fully connected layer, for one-channel (B, D, D) images ->
    (B, n_features): 8 * width features with the global average pool, else the flattened map.

    ``stem`` "imagenet" is He et al.'s (7x7 stride 2, max pool: the last map is D/32 wide);
    "small" is a 3x3 stride-1 convolution without pool (the CIFAR variant of the same paper; the
    last map is D/8 wide). At D <= 32 the ImageNet stem leaves a 1x1 map, which keeps nothing of
    where the particle is."""

    def __init__(self, width, box, pool=True, stem="imagenet", zero_init_residual=False):
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(1, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
            halvings = 2
        elif stem == "small":
            self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(inplace=True))
            halvings = 0
        else:
            raise ValueError("unknown encoder stem %r (imagenet, small)" % stem)
        blocks, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2 ** i
            blocks += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        if zero_init_residual:            # each block starts as the identity (its last BN scale 0)
            for b in blocks:
                nn.init.zeros_(b.bn2.weight)
        self.pool = pool
        side = box
        for _ in range(halvings + 3):          # the stem's and the three stride-2 stages'
            side = (side - 1) // 2 + 1
        self.n_features = cin * (1 if pool else side * side)

    def forward(self, x):
        h = self.blocks(self.stem(x[:, None]))
        return h.mean((2, 3)) if self.pool else h.flatten(1)


class MLPEncoder(nn.Module):
    """A ReLU MLP on the flattened (B, D, D) image -> (B, width) features."""

    def __init__(self, box, width, layers):
        super().__init__()
        mods, n_in = [], box * box
        for _ in range(layers):
            mods += [nn.Linear(n_in, width), nn.ReLU(inplace=True)]
            n_in = width
        self.net = nn.Sequential(*mods)
        self.n_features = width

    def forward(self, x):
        return self.net(x.flatten(1))


def make_encoder(config, box):
    """HetACUMN's image encoder from its config (``encoder`` resnet or mlp)."""
    if config.encoder == "mlp":
        return MLPEncoder(box, config.mlp_dim, config.mlp_layers)
    if config.encoder != "resnet":
        raise ValueError("unknown encoder %r (resnet, mlp)" % config.encoder)
    return ResNet18(config.enc_dim, box, pool=config.enc_pool, stem=stem_for_box(config.enc_stem, box),
                    zero_init_residual=config.enc_zero_init)


def stem_for_box(stem, box):
    """The encoder stem: ``stem`` unless "auto", which takes the ImageNet stem from D = 128 up
    (its last map is then at least 4x4) and the small-image stem below."""
    if stem != "auto":
        return stem
    return "imagenet" if box >= SMALL_STEM_BELOW else "small"


def _head(n_in, width, n_out):
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(inplace=True), nn.Linear(width, n_out))


def random_rotations_torch(n, device=None):
    """n rotations uniform on SO(3) from torch's generator (normalised Gaussian quaternions)."""
    q = torch.randn(n, 4, dtype=torch.float64)
    return torch.as_tensor(so3.quaternion_to_matrix(q.numpy()), dtype=torch.float32, device=device)
