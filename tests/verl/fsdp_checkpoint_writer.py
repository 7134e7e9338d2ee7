"""Write a real verl FSDP2 checkpoint on CPU (gloo): ``torchrun --nproc_per_node=2 THIS RUN TOK``.

A tiny randomly initialised Llama (SmolLM2's tokenizer, 2 layers, hidden 32, tied embeddings) is
sharded with FSDP2 over two CPU processes and saved by verl's own ``FSDPCheckpointManager`` as
``RUN/global_step_{1,2}/actor`` plus ``RUN/latest_checkpointed_iteration.txt``, exactly the
layout ``main_ppo`` writes. Rank 0 also saves the full weights of step 2 as ``RUN/reference.pt``.
Not a test module: the merger test runs it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager


def main(run_dir: str, tokenizer_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)  # the same initial weights on every rank
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, architectures=["LlamaForCausalLM"])
    model = LlamaForCausalLM(config)
    # verl names its FSDP mesh dimension "fsdp"; the merger relies on it
    mesh = init_device_mesh("cpu", (dist.get_world_size(),), mesh_dim_names=("fsdp",))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    manager = FSDPCheckpointManager(
        model, optim, processing_class=tok,
        checkpoint_config=OmegaConf.create({"save_contents": ["model", "optimizer", "extra"]}))
    run = Path(run_dir)
    ids = torch.tensor([tok("Rate this: <score>3</score>")["input_ids"]])
    for step in (1, 2):
        loss = model(input_ids=ids, labels=ids).loss  # one real step, so steps differ
        loss.backward()
        optim.step()
        optim.zero_grad()
        manager.save_checkpoint(str(run / f"global_step_{step}" / "actor"), global_step=step)
        if rank == 0:
            (run / "latest_checkpointed_iteration.txt").write_text(str(step))
    full = {k: v.full_tensor() if hasattr(v, "full_tensor") else v
            for k, v in model.state_dict().items()}
    if rank == 0:
        torch.save(full, run / "reference.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1], sys.argv[2])
