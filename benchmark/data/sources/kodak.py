"""The ``kodak`` source: the 24 Kodak PhotoCD images from r0k.us, verified by pixel SHA-256."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from benchmark.config import DatasetConfig
from benchmark.data.sources.common import NoOptions, SourceResult, _fetch_pixel_verified, _select, register_source

KODAK_URL = "http://r0k.us/graphics/kodak/kodak/{name}.png"

# SHA-256 of each image's decoded pixels ((H, W, 3) uint8, row-major bytes; see pixel_sha256),
# copied from the PIXEL_SHA256 file of the benchmark's mirror of r0k.us/graphics/kodak/kodak/.
KODAK_PIXEL_SHA256: Dict[str, str] = {
    "kodim01": "a00210743353594464ac67e680a41710f484444ca5f9dfddeb570de25c428273",
    "kodim02": "ae5a495df4ec40e0941265440ccf98973915b4190ab803e37a23ca93dd43a07e",
    "kodim03": "234e61f585503f2a44400f5561131e8a512ef2c15328cd83d5cdbf10e2616cf2",
    "kodim04": "e88e788fca00e6c723bb66ff45edb8cb56091ee284dcb73e3909834f2c96eeb6",
    "kodim05": "ed3d1ee770909d3b27903b52ce19ee59a9bf24621a7bf1fb57b90677da880cb6",
    "kodim06": "7f45158999fa297d1cfbd292b3e2f3f5b27770701c3473155c211c3f512cc97f",
    "kodim07": "4e3664bf6fe865b49f15f7b554efa7dbecaf73ae0e8699f2e307bf07849f1264",
    "kodim08": "889c3740e4ed54ca53d11ae735a44d15fa24fe312b3bd1609a80618a4092c208",
    "kodim09": "f8453140e63a42301a6dbebb849a3cc40d34e4e59580eb1f372f7f5460df0dbe",
    "kodim10": "fabe11b5c4f028394e093a5b5907e5fabc8072da0d5334fb3a38547a7e1be842",
    "kodim11": "ab4dd9bf8431e717d33892b3ba03c63bfea3c7fa72c2610010de7df3c194c075",
    "kodim12": "f412db2168e599949aac26bd3264f111b23a684f30a21cfd320e9e95bc69bbae",
    "kodim13": "875703d56fb9396f478b5d7d3b18e2b77c17147a685c6dc2567e1c574aaf01e3",
    "kodim14": "2bd5029ee75ac1697542e5b05624e8afe186e3250abd7513d6a806b52084c2f0",
    "kodim15": "b5353e7511277009922ecbdebfc6418fec53aa1b2a08d44fc957a7540825697b",
    "kodim16": "ed21745fd32fce95cc2c6af7fc52b1b15e590c7a14ab18ab34bd65ecaf955ac7",
    "kodim17": "566bc866664e9b06dc86e2654051b454844efe17322dbf7e24156d8243f1943e",
    "kodim18": "3475af71066f3ca8206eb12cfc989ebe9c6e44820a96604e88ae018606e1f7bd",
    "kodim19": "7956408ef24222d37ac53f579bd24d5b2c3557b16c657e8b71c1b6ae9f18de1b",
    "kodim20": "666ce8f2db5566a123bb081e70618f6f4c4253df960f3b41bb9dcc3dd134f3cf",
    "kodim21": "2d6902daf7c4486b7c8c04d834091841a2b38c8f0c81cd7a963a6510b34a2a6a",
    "kodim22": "f430842120c108b67725ada96b8b7b2a914f6a0915eacd5595064c6c1a5d70a0",
    "kodim23": "81992a83592267e69125666f3e3e04c1819529b4c4c1e55fde0a6a741bac4219",
    "kodim24": "e3e3ccc3e795b82a3da66934409dfe98ce0f5aadc6d7767543c506453599bb98",
}


@register_source("kodak", NoOptions)
def kodak(cfg: DatasetConfig, options: NoOptions, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """The 24 Kodak PhotoCD images (768x512 or 512x768) from r0k.us, each checked against
    ``KODAK_PIXEL_SHA256``. The PNG files are stored as downloaded. No options of its own.
    Raises ``DownloadError`` (naming ``kodimNN.png``) if one cannot be fetched or its pixels
    differ; ``ConfigError`` for unknown names in ``cfg.images``."""
    return [
        _fetch_pixel_verified(KODAK_URL.format(name=name), name, f"{name}.png", KODAK_PIXEL_SHA256[name], images_dir, mirror)
        for name in _select(cfg, list(KODAK_PIXEL_SHA256))
    ], []
