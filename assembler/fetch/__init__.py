"""Package files into the cache, and each package unpacked once."""
