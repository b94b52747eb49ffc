"""Which GPUs this machine has, and which one a worker process owns.

One Celery worker process per GPU: start each GPU worker with ``CUDA_VISIBLE_DEVICES=<N>``
(``N`` as ``nvidia-smi`` numbers the GPUs, or the GPU's UUID) and ``--concurrency=1``. The
worker calls ``worker_gpu_index()`` once and puts the answer in every ``JobSpec.gpu_index``; the
sandbox then exposes only that GPU's device node to the job. A GPU index here is the device
number of ``/dev/nvidia<N>``; on the machines we know it equals the ``nvidia-smi`` index (both
follow PCI order). Nothing here imports a CUDA library: it reads ``/dev``, ``/proc`` and, when
present, asks ``nvidia-smi``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEV = Path("/dev")
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
# Nodes every CUDA process needs besides its GPU's own /dev/nvidia<N>.
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
NO_GPU_VALUES = {"", "-1", "none", "void", "nodevfiles"}


class GpuAssignmentError(RuntimeError):
    """The worker's GPU pinning is ambiguous or names a GPU this machine does not have."""


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str | None = None
    name: str | None = None
    bus_id: str | None = None


def _from_proc(proc_gpus: Path) -> dict[int, Gpu]:
    gpus: dict[int, Gpu] = {}
    try:
        folders = sorted(proc_gpus.iterdir())
    except OSError:
        return gpus
    for folder in folders:
        try:
            text = (folder / "information").read_text(errors="replace")
        except OSError:
            continue
        fields = {
            key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in text.splitlines())
        }
        minor = fields.get("Device Minor", "")
        if minor.isdigit():
            gpus[int(minor)] = Gpu(
                index=int(minor),
                uuid=fields.get("GPU UUID") or None,
                name=fields.get("Model") or None,
                bus_id=fields.get("Bus Location") or folder.name,
            )
    return gpus


def _from_nvidia_smi() -> dict[int, Gpu]:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return {}
    try:
        output = subprocess.run(  # noqa: S603 - a fixed command line
            [executable, "-L"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    gpus = {}
    for match in re.finditer(r"^GPU (\d+): (.*?)(?: \(UUID: (\S+)\))?$", output, re.MULTILINE):
        index = int(match.group(1))
        gpus[index] = Gpu(index=index, name=match.group(2), uuid=match.group(3))
    return gpus


def list_gpus(*, dev: Path = DEV, proc_gpus: Path = PROC_GPUS) -> list[Gpu]:
    """The GPUs of this machine, from ``/dev/nvidia<N>`` (with the driver's details from
    ``/proc`` when readable), else from ``nvidia-smi -L``."""
    nodes = sorted(
        int(match.group(1))
        for entry in (dev.iterdir() if dev.is_dir() else [])
        if (match := re.fullmatch(r"nvidia(\d+)", entry.name))
    )
    details = _from_proc(proc_gpus)
    if nodes:
        return [details.get(index, Gpu(index=index)) for index in nodes]
    if details:
        return [details[index] for index in sorted(details)]
    smi = _from_nvidia_smi()
    return [smi[index] for index in sorted(smi)]


def device_nodes(index: int, *, dev: Path = DEV) -> list[Path]:
    """The device nodes a job on GPU ``index`` needs, or ``[]`` when this machine cannot run it
    (no ``/dev/nvidia<index>`` or no ``/dev/nvidiactl``)."""
    own = dev / f"nvidia{index}"
    if not own.exists() or not (dev / "nvidiactl").exists():
        return []
    nodes = [own] + [dev / name for name in CONTROL_NODES if (dev / name).exists()]
    caps = dev / "nvidia-caps"
    if caps.is_dir():
        nodes.append(caps)
    return nodes


def gpu_uuid(index: int, *, proc_gpus: Path = PROC_GPUS) -> str | None:
    gpu = _from_proc(proc_gpus).get(index)
    return gpu.uuid if gpu else None


def worker_gpu_index(
    environ: Mapping[str, str] | None = None, *, gpus: list[Gpu] | None = None
) -> int | None:
    """The GPU this worker process owns, from its ``CUDA_VISIBLE_DEVICES``; ``None`` for none.

    - ``"2"`` or ``"GPU-<uuid>"``: that GPU (it must exist here);
    - ``""``, ``"-1"``, ``"none"``: no GPU, jobs run on the CPU;
    - unset: the only GPU when there is exactly one, none when there are none;
    - several GPUs (``"0,1"``, or unset on a multi-GPU machine): ``GpuAssignmentError``, since
      two workers would otherwise share a GPU.
    """
    environ = os.environ if environ is None else environ
    present = list_gpus() if gpus is None else gpus
    by_index = {gpu.index: gpu for gpu in present}
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        if len(present) > 1:
            raise GpuAssignmentError(
                f"this machine has {len(present)} GPUs: start one worker per GPU, each with "
                "CUDA_VISIBLE_DEVICES set to its GPU"
            )
        return present[0].index if present else None
    value = value.strip()
    if value.lower() in NO_GPU_VALUES:
        return None
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if len(entries) != 1:
        raise GpuAssignmentError(
            f"CUDA_VISIBLE_DEVICES={value!r} names several GPUs; a worker owns exactly one"
        )
    entry = entries[0]
    if entry.isdigit():
        index = int(entry)
        if index not in by_index:
            raise GpuAssignmentError(f"CUDA_VISIBLE_DEVICES names GPU {index}, not present here")
        return index
    for gpu in present:
        if gpu.uuid and (gpu.uuid == entry or gpu.uuid.startswith(entry)):
            return gpu.index
    raise GpuAssignmentError(f"CUDA_VISIBLE_DEVICES names {entry!r}, not a GPU of this machine")
