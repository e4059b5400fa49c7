"""rlint import-model: a GGUF file (written here with the gguf package) into a safetensors model directory."""

import numpy as np
import torch

from rlint.cli import main as rlint_main

V, H, LAYERS, FFN, HEADS = 64, 32, 1, 64, 2  # rows of 32 values: one Q8_0 block


def write_gguf(path, architecture: str = "llama", quantized=None, raw=None) -> None:
    """A tiny Llama in GGUF: float tensors, ``quantized`` ones as Q8_0, ``raw`` ones as (type, bytes) as they are."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    writer = GGUFWriter(str(path), architecture)
    writer.add_context_length(64)
    writer.add_embedding_length(H)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([chr(33 + i) for i in range(V - 2)] + ["<s>", "<|endoftext|>"])  # the byte-level converter adds <|endoftext|> when the vocabulary lacks it
    writer.add_token_types([1] * (V - 2) + [3, 3])
    writer.add_token_scores([0.0] * V)
    writer.add_token_merges([])
    writer.add_bos_token_id(V - 2)
    writer.add_eos_token_id(V - 1)
    writer.add_chat_template("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}")
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (V, H), "output_norm.weight": (H,), "output.weight": (V, H)}
    for name, shape in (("attn_norm", (H,)), ("attn_q", (H, H)), ("attn_k", (H, H)), ("attn_v", (H, H)), ("attn_output", (H, H)),
                        ("ffn_norm", (H,)), ("ffn_gate", (FFN, H)), ("ffn_up", (FFN, H)), ("ffn_down", (H, FFN))):
        shapes[f"blk.0.{name}.weight"] = shape
    for name, shape in shapes.items():
        data = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        if raw and name in raw:
            qtype, payload = raw[name]
            writer.add_tensor(name, payload, raw_dtype=qtype)
        elif quantized and name in quantized:
            writer.add_tensor(name, quantize(data, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_quantized_gguf_becomes_the_same_model_in_float_safetensors(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlint.checkpoints import verify_checkpoint

    source = tmp_path / "tiny.gguf"
    write_gguf(source, quantized={"blk.0.attn_q.weight", "blk.0.ffn_up.weight"})
    out = tmp_path / "model"
    assert rlint_main(["import-model", str(source), str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "llama" in line and "2 Q8_0" in line and "chat template: yes" in line
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"}
    assert "quantization_config" not in (out / "config.json").read_text()
    verify_checkpoint(out)
    converted = AutoModelForCausalLM.from_pretrained(out)
    direct = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=source.name, dtype=torch.float32)
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, direct(ids).logits)  # the dequantized weights, bit for bit
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "AB"}], tokenize=False) == "<user>AB"


def refused(tmp_path, capsys, source, out, fragment) -> None:
    assert rlint_main(["import-model", str(source), str(out)]) == 2
    # tqdm reads TQDM_DISABLE when first imported, earlier in this process than rlint's CLI sets it: drop its bars here
    # (test_the_command_prints_one_line_in_its_own_process checks a real process)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "it/s]" not in line]
    assert len(err) == 1 and err[0].startswith("rlint import-model: error: ") and fragment in err[0], err
    assert not out.exists() or out.is_dir() and not any(p.name != "keep.txt" for p in out.iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]  # no temporary left


def test_what_cannot_be_converted_is_refused_in_one_line_with_exit_2(tmp_path, capsys):
    from gguf import GGMLQuantizationType

    q81 = tmp_path / "q81.gguf"  # Q8_1 blocks: 32 values in 40 bytes; the gguf package has no dequantizer for them
    write_gguf(q81, raw={"blk.0.attn_k.weight": (GGMLQuantizationType.Q8_1, np.zeros((H, 40), dtype=np.uint8))})
    refused(tmp_path, capsys, q81, tmp_path / "model", "tensor(s) of type Q8_1, which the gguf package cannot dequantize")

    other = tmp_path / "other.gguf"
    write_gguf(other, architecture="rwkv9")
    refused(tmp_path, capsys, other, tmp_path / "model", "architecture 'rwkv9': transformers cannot read it from GGUF")

    text = tmp_path / "notes.gguf"
    text.write_text("not a model\n")
    refused(tmp_path, capsys, text, tmp_path / "model", "not a readable GGUF file")
    refused(tmp_path, capsys, tmp_path / "missing.gguf", tmp_path / "model", "missing.gguf: no such file")

    good = tmp_path / "good.gguf"
    write_gguf(good)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("mine\n")
    refused(tmp_path, capsys, good, tmp_path / "model", "exists and is not an empty folder")
    assert (tmp_path / "model" / "keep.txt").read_text() == "mine\n"


def test_a_conversion_rlint_could_not_load_is_refused_before_anything_is_written(tmp_path, capsys):
    source = tmp_path / "no_eot.gguf"
    write_gguf(source)
    # a vocabulary without <|endoftext|>: transformers' byte-level converter adds it past the embedding
    text = source.read_bytes().replace(b"<|endoftext|>", b"<|endoftexx|>")
    source.write_bytes(text)
    refused(tmp_path, capsys, source, tmp_path / "model", "converted, but the result is no usable model directory")


def test_the_command_prints_one_line_in_its_own_process(tmp_path):
    import subprocess
    import sys

    source = tmp_path / "other.gguf"
    write_gguf(source, architecture="rwkv9")
    good = tmp_path / "good.gguf"
    write_gguf(good)
    bad = subprocess.run([sys.executable, "-m", "rlint.cli", "import-model", str(source), str(tmp_path / "a")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    ok = subprocess.run([sys.executable, "-m", "rlint.cli", "import-model", str(good), str(tmp_path / "b")], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stderr == "" and ok.stdout.startswith("imported "), (ok.stdout, ok.stderr[-2000:])
