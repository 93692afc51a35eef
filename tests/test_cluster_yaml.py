import copy

import yaml
from conftest import ROOT


def test_cluster_yaml_passes_rays_launcher_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    for key in ("cluster_name", "provider", "auth", "available_node_types", "head_node_type", "max_workers"):
        assert key in cfg
    assert cfg["provider"]["type"] == "aws"
    validate_config(prepare_config(copy.deepcopy(cfg)))

    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert "GPU" not in str(head["node_config"]["InstanceType"]).upper() and head["resources"].get("CPU") == 0
    gpu_groups = [n for k, n in cfg["available_node_types"].items() if k != cfg["head_node_type"]]
    assert gpu_groups and all(n["min_workers"] < n["max_workers"] for n in gpu_groups)
    assert any(r.startswith("accelerator_type:") for n in gpu_groups for r in n["resources"])
    assert any("shopgen" in c and "[gpu]" in c for c in cfg["setup_commands"])
