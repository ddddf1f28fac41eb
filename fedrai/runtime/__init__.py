"""Process-level runtime: Flower's SuperLink + Ray simulation, and deployment (TLS, node auth, SuperNodes).

Every process is started as a managed subprocess and stopped by PID.
"""

from fedrai.runtime.flower_app import DEFAULT_COMPONENTS, build_run_config, write_app_dir, write_flower_config
from fedrai.runtime.processes import stop_process_tree
from fedrai.runtime.simulation import SimulationResult, run_simulation
from fedrai.runtime.superlink import SimulationError, SuperLinkHandle, managed_superlink

__all__ = [
    "DEFAULT_COMPONENTS",
    "SimulationError",
    "SimulationResult",
    "SuperLinkHandle",
    "build_run_config",
    "managed_superlink",
    "run_simulation",
    "stop_process_tree",
    "write_app_dir",
    "write_flower_config",
]
