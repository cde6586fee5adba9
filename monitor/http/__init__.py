"""The HTTP face: the one port with metrics, health, the JSON API and the built-in drift page."""
