"""LandSegmenter: land-use / land-cover mapping from any sensor, with class names as text prompts."""

__version__ = "0.1.0"


def map_scene(*args, **kwargs):
    """Map a scene to a land-cover COG; see :func:`landsegmenter.infer.mapper.map_scene`."""
    from landsegmenter.infer.mapper import map_scene as _map_scene

    return _map_scene(*args, **kwargs)


def map_distributed(*args, **kwargs):
    """Map a scene with blocks as Dask tasks; see :func:`landsegmenter.infer.distributed.map_distributed`."""
    from landsegmenter.infer.distributed import map_distributed as _map_distributed

    return _map_distributed(*args, **kwargs)


__all__ = ["map_scene", "map_distributed", "__version__"]
