"""Backends behind one interface (deploy.runtime.Backend): `sim` (MuJoCo), `lcm`, `dds` (optional)."""
