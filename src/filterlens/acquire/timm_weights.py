"""timm's pretrained ImageNet weights into the checkpoint contract.

``timm.create_model(name, pretrained=True)``, timm's own download through the Hugging Face hub,
which honours ``HF_HOME`` / ``HF_HUB_CACHE`` (where the cache is) and ``HF_HUB_OFFLINE=1`` (cache
only, no network). The timm of requirements.txt imports only huggingface_hub < 1.0
(requirements.in pins it); with a newer one it would silently skip the hub and its cache. The
input normalisation is the pretrained config's mean and std. The download goes through a
function passed in (``create_model``) and every wait through an injectable ``sleep``, so the
logic is tested offline.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from torch import nn

from filterlens.acquire.checkpoint import UNUSABLE_FIX, Checkpoint, check_fits, plain_state_dict, usable_tensors
from filterlens.acquire.errors import AcquisitionError, PermanentError
from filterlens.acquire.retries import with_retries
from filterlens.models.pretrained_sources import timm_name_problem

LOG = logging.getLogger(__name__)


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hf_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def timm_fix(pretrained_name: str) -> str:
    repo = f"models--timm--{pretrained_name}"
    return (f"Fix: on a machine with internet, run\n  HF_HOME=/some/dir python -c \"import timm; "
            f"timm.create_model('{pretrained_name}', pretrained=True)\"\n"
            f"and copy /some/dir/hub/{repo} into this machine's Hugging Face cache "
            f"({hf_cache_dir()}/{repo}; set HF_HOME or HF_HUB_CACHE to use another); "
            f"or unset HF_HUB_OFFLINE to download.")


def timm_checkpoint(model_id: str, name: str, model: nn.Module, pretrained_name: str | None = None) -> Checkpoint:
    """A timm model as a checkpoint: architecture ``timm`` {"name": name}, its pretrained mean/std."""
    config = getattr(model, "pretrained_cfg", None) or {}
    mean, std = config.get("mean"), config.get("std")
    if mean is None or std is None:
        raise AcquisitionError(f"{model_id}: timm's pretrained config of {name} has no mean/std")
    num_classes = int(getattr(model, "num_classes", 1000))
    state_dict = plain_state_dict(model)
    check_fits(state_dict, "timm", {"name": name}, num_classes, model_id)
    state_dict = usable_tensors(state_dict, state_dict, f"{model_id}: timm's {pretrained_name or name}",
                                fix=UNUSABLE_FIX)
    import timm

    return Checkpoint(model_id=model_id, dataset="imagenet", num_classes=num_classes, architecture="timm",
                      arch_kwargs={"name": name}, normalization={"mean": [float(m) for m in mean],
                                                                 "std": [float(s) for s in std]},
                      source="timm", state_dict=state_dict,
                      extra={"pretrained": pretrained_name or name, "timm_version": timm.__version__,
                             "hf_hub_id": config.get("hf_hub_id"), "url": config.get("url")})


def load_timm(pretrained_name: str, *, attempts: int = 4, backoff_s: float = 30.0, max_backoff_s: float = 600.0,
              create_model: Callable[..., nn.Module] | None = None, sleep: Callable[[float], None] = time.sleep,
              log: logging.Logger = LOG) -> nn.Module:
    """``timm.create_model(pretrained_name, pretrained=True)``: timm's own download through the
    Hugging Face hub (huggingface_hub < 1.0, which timm 1.0.9 imports), into and from its cache.

    Network failures are retried with back-off; offline (HF_HUB_OFFLINE), weights missing from
    the cache fail at once with the fix; a name without pretrained weights on the hub fails at once.
    """
    if problem := timm_name_problem(pretrained_name):
        raise PermanentError(problem)
    import timm

    create_model = create_model or timm.create_model
    try:
        config = timm.models.get_pretrained_cfg(pretrained_name)
    except RuntimeError:  # an unknown tag of a known architecture
        config = None
    if config is None or not config.hf_hub_id:
        raise PermanentError(f"timm has no pretrained weights {pretrained_name!r} on the Hugging Face hub. "
                             "Fix: set the sheet's source_key to one of timm.list_pretrained().")
    if not timm.models._hub.has_hf_hub():
        raise PermanentError(f"timm {timm.__version__} cannot import this huggingface_hub and would bypass the "
                             "Hugging Face cache. Fix: install the huggingface_hub of requirements.txt (< 1.0).")
    offline = hf_offline()
    log.info("timm %s: Hugging Face hub %s, cache %s, offline %s", pretrained_name, config.hf_hub_id,
             hf_cache_dir(), offline)
    try:
        model = with_retries(lambda attempt: create_model(pretrained_name, pretrained=True),
                             attempts=1 if offline else attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                             sleep=sleep, give_up_on=(PermanentError,),
                             what=f"timm {pretrained_name} (pretrained weights)", fix=timm_fix(pretrained_name),
                             log=log)
    except AcquisitionError as error:
        if offline and not isinstance(error, PermanentError):
            raise AcquisitionError(f"HF_HUB_OFFLINE is set and the weights of timm {pretrained_name} are not in "
                                   f"the Hugging Face cache {hf_cache_dir()}.\n{error}") from None
        raise
    return model.eval()


def timm_base_name(pretrained_name: str) -> str:
    """``resnet18.tv_in1k`` -> ``resnet18`` (the architecture; the tag picks the weights)."""
    return pretrained_name.split(".", 1)[0]
