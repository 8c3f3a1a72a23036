"""Default configuration shipped with Tinytown (installed as ``tinytown.config``)."""
