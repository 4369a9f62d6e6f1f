"""The wire contract every component imports and none redefines.

Standard library and pydantic only: path rules (`paths`), the error table (`errors`),
the block and checksum format (`block_format`), the data-transfer packets
(`data_transfer`) and the control-path messages (`client_namenode`,
`datanode_namenode`). See docs/protocol.md.
"""

PROTOCOL_VERSION = "1"


def _software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pydfs")
    except PackageNotFoundError:
        return "0.0.0+unknown"


SOFTWARE_VERSION = _software_version()
