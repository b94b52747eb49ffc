"""GPU discovery and the one-worker-per-GPU slot assignment."""

from __future__ import annotations

import pytest

from workers.gpu import Gpu, GpuAssignmentError, device_nodes, list_gpus, worker_gpu_index

TWO = [Gpu(index=0, uuid="GPU-aaaa-1111"), Gpu(index=1, uuid="GPU-bbbb-2222")]


@pytest.fixture
def fake_machine(tmp_path):
    dev, proc = tmp_path / "dev", tmp_path / "gpus"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (dev / name).touch()
    for minor, bus in ((0, "0000:17:00.0"), (1, "0000:65:00.0")):
        (proc / bus).mkdir(parents=True)
        (proc / bus / "information").write_text(
            f"Model: \t\t NVIDIA H100\nDevice Minor: \t {minor}\nGPU UUID: \t GPU-{minor}abc\n"
        )
    return dev, proc


def test_gpus_are_listed_from_their_device_nodes_with_the_drivers_details(fake_machine):
    dev, proc = fake_machine

    gpus = list_gpus(dev=dev, proc_gpus=proc)

    assert [(g.index, g.uuid, g.name) for g in gpus] == [
        (0, "GPU-0abc", "NVIDIA H100"),
        (1, "GPU-1abc", "NVIDIA H100"),
    ]


def test_a_job_gets_its_gpu_node_and_the_control_nodes_only(fake_machine):
    dev, _ = fake_machine

    nodes = {path.name for path in device_nodes(1, dev=dev)}

    assert nodes == {"nvidia1", "nvidiactl", "nvidia-uvm"}
    assert device_nodes(2, dev=dev) == []


def test_a_machine_without_gpu_has_none(tmp_path, monkeypatch):
    monkeypatch.setattr("workers.gpu.shutil.which", lambda name: None)  # no nvidia-smi either

    assert list_gpus(dev=tmp_path, proc_gpus=tmp_path / "none") == []
    assert device_nodes(0, dev=tmp_path) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("GPU-bbbb-2222", 1), ("GPU-aaaa", 0), ("", None), ("-1", None), (" 0 ", 0)],
)
def test_the_worker_owns_the_gpu_its_cuda_visible_devices_names(value, expected):
    assert worker_gpu_index({"CUDA_VISIBLE_DEVICES": value}, gpus=TWO) == expected


def test_without_pinning_a_single_gpu_machine_gives_its_gpu_and_none_gives_none():
    assert worker_gpu_index({}, gpus=TWO[:1]) == 0
    assert worker_gpu_index({}, gpus=[]) is None


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({}, "start one worker per GPU"),
        ({"CUDA_VISIBLE_DEVICES": "0,1"}, "names several GPUs"),
        ({"CUDA_VISIBLE_DEVICES": "7"}, "not present"),
        ({"CUDA_VISIBLE_DEVICES": "GPU-cccc"}, "not a GPU of this machine"),
    ],
)
def test_ambiguous_or_wrong_pinning_is_refused(environ, complaint):
    with pytest.raises(GpuAssignmentError, match=complaint):
        worker_gpu_index(environ, gpus=TWO)
