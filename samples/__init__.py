"""Generator of synthetic firmware images with planted behaviours, clean twins and hostile inputs."""
