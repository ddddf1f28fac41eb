"""Process-level runtime: Flower's SuperLink + Ray simulation, and deployment (TLS, node auth, SuperNodes).

Every process is started as a managed subprocess and stopped by PID.
"""

from fedrai.runtime.simulation import (
    DEFAULT_COMPONENTS,
    SimulationError,
    SimulationResult,
    SuperLinkHandle,
    build_run_config,
    managed_superlink,
    run_simulation,
    stop_process_tree,
    write_app_dir,
    write_flower_config,
)

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
