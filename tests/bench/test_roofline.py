"""lab.bench.roofline: the ceiling from bytes a step reads and measured bandwidth; a beaten ceiling is no share."""

import importlib

from lab import bench


def test_roofline_and_percentage():
    roof = bench.roofline(8 * 10**9, 960.0)  # a 4B model in bf16 on an RTX 6000 Ada
    assert roof["batch1_ceiling_tok_s"] == 120.0
    assert bench.pct_of_ceiling(60.0, 1, roof) == 50.0
    assert bench.pct_of_ceiling(960.0, 16, roof) == 50.0  # per sequence in flight
    assert bench.roofline(0, 100)["batch1_ceiling_tok_s"] is None


def test_a_beaten_ceiling_is_not_a_share_and_kv_and_spread_count():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    roof = rl.roofline(10**9, 20.0, kv_per_token=12 * 2**10, context_tokens=1000,
                       bandwidth=rl.bandwidth_stats([18.0, 20.0, 26.0], 2, 2**30))
    assert roof["step_bytes"] == 10**9 + 12_288_000 and roof["batch1_ceiling_tok_s"] == 19.8
    assert roof["ceiling_range_tok_s"] == [17.8, 25.7] and roof["bandwidth"]["median_gbs"] == 20.0
    assert rl.pct_of_ceiling(9.9, 1, roof) == 50.0 and not rl.above_ceiling(9.9, 1, roof)
    assert rl.pct_of_ceiling(21.0, 1, roof) is None and rl.above_ceiling(21.0, 1, roof)  # 106%: never printed


def test_each_rounds_decode_is_divided_by_the_bandwidth_read_beside_it():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    from lab.bench.suite import b1_share
    reads = [rl.bandwidth_stats(g, 2, 2**29) for g in ([49.0, 50.0, 51.0], [78.0, 80.0, 85.0], [54.0, 55.0, 56.0])]
    bw = rl.pooled(reads)
    assert bw["rounds_gbs"] == [50.0, 80.0, 55.0] and bw["median_gbs"] == 55.0
    assert (bw["min_gbs"], bw["max_gbs"], bw["runs"]) == (49.0, 85.0, 9)
    roof = rl.roofline(10**9, bw["median_gbs"], bandwidth=bw)  # 1 GB a step: the ceiling is 55 tok/s
    # the host's bandwidth drifted between rounds; the decode followed it in rounds 1 and 2, round 3 was slow
    share = b1_share([30.0, 48.0, 20.0], roof)
    assert share["server_b1_pct_rounds"] == [60.0, 60.0, 36.36] and share["server_b1_pct_of_roofline"] == 60.0
    unpaired = b1_share([30.0, 48.0, 20.0], rl.roofline(10**9, 55.0))  # median decode 30 over the one ceiling
    assert unpaired == {"server_b1_pct_of_roofline": 54.55, "server_b1_above_roofline": False}
    above = b1_share([90.0], rl.roofline(10**9, 50.0, bandwidth=rl.pooled(reads[:1])))
    assert above["server_b1_pct_of_roofline"] is None and above["server_b1_above_roofline"]  # 180%: never a share


def test_decode_bytes_skip_an_untied_embedding_and_follow_the_served_dtype():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    emb, head, layer = 151936 * 896 * 2, 151936 * 896 * 2, 700 * 2**20  # Qwen2.5-0.5B as imported from GGUF
    untied = [("model.embed_tokens.weight", "BF16", emb), ("lm_head.weight", "BF16", head),
              ("model.layers.0.mlp.up_proj.weight", "BF16", layer)]
    assert rl.decode_bytes(untied) == {"weights": head + layer, "embedding_lookup_only": emb,
                                       "experts_not_routed_to": 0}
    tied = [untied[0], untied[2]]  # the table is the lm_head: read whole, once
    assert rl.decode_bytes(tied)["weights"] == emb + layer
    assert rl.decode_bytes(tied, "float32")["weights"] == 2 * (emb + layer)  # bf16 files served in float32
    awq = [("model.layers.0.mlp.up_proj.qweight", "I32", 1000), ("model.layers.0.mlp.up_proj.scales", "F16", 10)]
    assert rl.decode_bytes(awq, "float32")["weights"] == 1020  # packed ints stay as stored
    qwen = {"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896}
    assert rl.expert_share(qwen) == 1.0 and rl.decode_bytes(untied, experts=rl.expert_share(qwen))["weights"] == \
        head + layer  # a dense model: nothing routed


def test_a_token_reads_only_the_experts_it_is_routed_to():
    """Qwen3-30B-A3B routes each token to 8 of 128 experts: counting every expert put its batch-1 ceiling ~8x too
    low. Per-expert names (Hub checkpoints) and fused ones (transformers 5's) are both routed; a shared expert,
    attention and the head are read whole."""
    rl = importlib.import_module("lab.bench.roofline")
    share = rl.expert_share({"text_config": {"num_experts": 128, "num_experts_per_tok": 8}})
    assert share == 1 / 16 and rl.expert_share({"num_local_experts": 32, "num_experts_per_tok": 4}) == 1 / 8
    per_expert = [(f"model.layers.0.mlp.experts.{e}.{w}.weight", "BF16", 1600) for e in range(128)
                  for w in ("gate_proj", "up_proj", "down_proj")]
    fused = [("model.layers.0.mlp.experts.gate_up_proj", "BF16", 128 * 3200), ("model.layers.0.mlp.experts.down_proj",
                                                                                "BF16", 128 * 1600)]
    always = [("model.layers.0.self_attn.q_proj.weight", "BF16", 5000), ("lm_head.weight", "BF16", 7000),
              ("model.layers.0.mlp.shared_expert.up_proj.weight", "BF16", 900),
              ("model.layers.0.mlp.gate.weight", "BF16", 300)]  # the router: every token
    for experts in (per_expert, fused):
        got = rl.decode_bytes(always + experts, experts=share)
        assert got["weights"] == 5000 + 7000 + 900 + 300 + 8 * 3 * 1600
        assert got["experts_not_routed_to"] == 120 * 3 * 1600
    assert rl.decode_bytes(always + fused)["weights"] == 13200 + 128 * 4800  # no share given: all read


def test_kv_bytes_count_every_layer_s_k_and_v_in_the_served_dtype():
    rl = importlib.import_module("lab.bench.roofline")
    qwen = {"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896}
    assert rl.kv_bytes_per_token(qwen, "bfloat16") == 2 * 24 * 2 * 64 * 2 == 12 * 2**10
    assert rl.kv_bytes_per_token({"text_config": {**qwen, "head_dim": 128}}, "float32") == 2 * 24 * 2 * 128 * 4
    assert rl.kv_bytes_per_token({}) == 0


def test_gpu_bandwidth_table_matches_nvml_names():
    assert bench.gpu_bandwidth_gbs("NVIDIA H100 80GB HBM3") == 3350  # the SXM part, as NVML names it
    assert bench.gpu_bandwidth_gbs("NVIDIA H100 PCIe") == 2000
    assert bench.gpu_bandwidth_gbs("NVIDIA H100 NVL") == 3900
    assert bench.gpu_bandwidth_gbs("NVIDIA H200") == 4800
    assert bench.gpu_bandwidth_gbs("NVIDIA A100-SXM4-80GB") == 2039
    assert bench.gpu_bandwidth_gbs("Some Future GPU") is None
