"""Linux backend: policy -> Landlock + seccomp plan, launcher, AF_UNIX broker."""
