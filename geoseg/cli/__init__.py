"""The ``geoseg`` command line: builds typed configs and calls the library."""
