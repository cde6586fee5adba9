"""First-party driftd plugins, written against the same hooks a third party uses."""
