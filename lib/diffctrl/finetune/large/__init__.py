"""The large-model path of fine-tuning (the ``large`` extra: diffusers, peft, transformers).

- :mod:`.lora`  low-rank adapters (peft LoRA) as the control: a diffusers UNet as the
  pre-trained chain (:class:`~.lora.DiffusersChain`, :class:`~.lora.LoRAControl`) and the
  book's own image models (:class:`~.lora.AdapterControl`, the digits experiment);
- :mod:`.sd`    the paper's experiment (Han, Razaviyayn, Xu 2025, Sec. 6): Stable Diffusion
  with LoRA adapters and a decoded-image reward, one call (:func:`~.sd.build_objective`);
- :mod:`.ddp`   the same trainer across processes (DistributedDataParallel), a command:
  ``torchrun --nproc_per_node 2 -m diffctrl.finetune.large.ddp --out run/``.

The third-party libraries are imported where they are used, so this package imports without
them. :mod:`.ddp` is a command and is not imported here (``python -m`` runs it afresh).
"""

from .lora import (
    SD_TARGETS,
    AdapterControl,
    DiffusersChain,
    LoRAControl,
    add_lora,
    load_pretrained_unet,
    lora_state,
    schedule_from_diffusers,
    set_adapters,
    tiny_unet,
)
from .sd import (
    PAPER_PROMPTS,
    SD_PARTS,
    DecodedReward,
    build_objective,
    check_sd_folder,
    encode_prompt,
    green_reward,
    load_sd,
    tiny_sd_folder,
)

__all__ = [
    "PAPER_PROMPTS",
    "SD_PARTS",
    "SD_TARGETS",
    "AdapterControl",
    "DecodedReward",
    "DiffusersChain",
    "LoRAControl",
    "add_lora",
    "build_objective",
    "check_sd_folder",
    "encode_prompt",
    "green_reward",
    "load_pretrained_unet",
    "load_sd",
    "lora_state",
    "schedule_from_diffusers",
    "set_adapters",
    "tiny_sd_folder",
    "tiny_unet",
]
