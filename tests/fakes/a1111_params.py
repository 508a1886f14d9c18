"""The fake A1111's catalogue and request parameters: checkpoints, samplers, schedulers, the txt2img/img2img
defaults, A1111 1.10 sampler/scheduler resolution and the pydantic-v1-like echo of request parameters.
"""

from __future__ import annotations

import copy
from typing import Any

A1111_MODELS: list[dict[str, Any]] = [
    {"title": "v1-5-pruned-emaonly.safetensors [6ce0161689]", "model_name": "v1-5-pruned-emaonly",
     "hash": "6ce0161689", "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
     "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors", "config": None},
    {"title": "anime/animagineXL_v31.safetensors", "model_name": "anime_animagineXL_v31", "hash": None,
     "sha256": None, "filename": "/models/Stable-diffusion/anime/animagineXL_v31.safetensors", "config": None},
]
KOBOLD_MODELS: list[dict[str, Any]] = [
    {"title": "sd15_dreamshaper", "model_name": "sd15_dreamshaper", "hash": "8888888888", "sha256": "8" * 64,
     "filename": "/models/sd15_dreamshaper.safetensors", "config": None},
]
A1111_SAMPLERS: list[dict[str, Any]] = [
    {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {"scheduler": "karras"}},
    {"name": "DPM++ SDE", "aliases": ["k_dpmpp_sde"], "options": {"scheduler": "karras", "second_order": "True"}},
    {"name": "DPM++ 2M SDE", "aliases": ["k_dpmpp_2m_sde"], "options": {"scheduler": "exponential"}},
    {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"], "options": {"uses_ensd": "True"}},
    {"name": "Euler", "aliases": ["k_euler"], "options": {}},
    {"name": "LMS", "aliases": ["k_lms"], "options": {}},
    {"name": "Heun", "aliases": ["k_heun"], "options": {"second_order": "True"}},
    {"name": "DPM2", "aliases": ["k_dpm_2"], "options": {"discard_next_to_last_sigma": "True"}},
    {"name": "DDIM", "aliases": ["ddim"], "options": {}},
    {"name": "UniPC", "aliases": ["unipc"], "options": {}},
    {"name": "LCM", "aliases": ["k_lcm"], "options": {}},
]
KOBOLD_SAMPLERS = [{"name": n, "aliases": [n], "options": {}}
                   for n in ("Euler", "Euler a", "Heun", "DPM2", "DPM++ 2M", "DDIM", "LCM", "Default")]
SCHEDULERS: list[dict[str, Any]] = [
    {"name": name, "label": label, "aliases": aliases, "default_rho": rho, "need_inner_model": inner}
    for name, label, aliases, rho, inner in [
        ("automatic", "Automatic", None, -1.0, False), ("uniform", "Uniform", None, -1.0, True),
        ("karras", "Karras", None, 7.0, False), ("exponential", "Exponential", None, -1.0, False),
        ("polyexponential", "Polyexponential", None, 1.0, False),
        ("sgm_uniform", "SGM Uniform", ["SGMUniform"], -1.0, True), ("kl_optimal", "KL Optimal", None, -1.0, False),
        ("align_your_steps", "Align Your Steps", None, -1.0, False), ("simple", "Simple", None, -1.0, True),
        ("normal", "Normal", None, -1.0, True), ("ddim", "DDIM", None, -1.0, True), ("beta", "Beta", None, -1.0, True),
    ]
]

BASE_DEFAULTS: dict[str, Any] = {
    "prompt": "", "negative_prompt": "", "styles": None, "seed": -1, "subseed": -1, "subseed_strength": 0,
    "seed_resize_from_h": -1, "seed_resize_from_w": -1, "sampler_name": None, "scheduler": None,
    "batch_size": 1, "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512, "height": 512,
    "restore_faces": None, "tiling": None, "do_not_save_samples": False, "do_not_save_grid": False, "eta": None,
    "denoising_strength": 0.75, "s_min_uncond": None, "s_churn": None, "s_tmax": None, "s_tmin": None,
    "s_noise": None, "override_settings": None, "override_settings_restore_afterwards": True,
    "refiner_checkpoint": None, "refiner_switch_at": None, "disable_extra_networks": False,
    "firstpass_image": None, "comments": None,
}
TXT2IMG_ONLY: dict[str, Any] = {
    "enable_hr": False, "firstphase_width": 0, "firstphase_height": 0, "hr_scale": 2.0, "hr_upscaler": None,
    "hr_second_pass_steps": 0, "hr_resize_x": 0, "hr_resize_y": 0, "hr_checkpoint_name": None,
    "hr_sampler_name": None, "hr_scheduler": None, "hr_prompt": "", "hr_negative_prompt": "", "force_task_id": None,
}
IMG2IMG_ONLY: dict[str, Any] = {
    "init_images": None, "resize_mode": 0, "image_cfg_scale": None, "mask": None, "mask_blur_x": 4,
    "mask_blur_y": 4, "mask_blur": None, "mask_round": True, "inpainting_fill": 0, "inpaint_full_res": True,
    "inpaint_full_res_padding": 0, "inpainting_mask_invert": 0, "initial_noise_multiplier": None,
    "latent_mask": None, "force_task_id": None, "include_init_images": False,
}
API_EXTRAS: dict[str, Any] = {
    "sampler_index": "Euler", "script_name": None, "script_args": [], "send_images": True, "save_images": False,
    "alwayson_scripts": {}, "infotext": None,
}
TXT2IMG_DEFAULTS = {**BASE_DEFAULTS, **TXT2IMG_ONLY, **API_EXTRAS}
IMG2IMG_DEFAULTS = {**BASE_DEFAULTS, **IMG2IMG_ONLY, **API_EXTRAS}
INT_FIELDS = frozenset({
    "seed", "subseed", "seed_resize_from_h", "seed_resize_from_w", "batch_size", "n_iter", "steps", "width",
    "height", "firstphase_width", "firstphase_height", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y",
    "resize_mode", "mask_blur", "mask_blur_x", "mask_blur_y", "inpainting_fill", "inpaint_full_res_padding",
    "inpainting_mask_invert",
})
FLOAT_FIELDS = frozenset({
    "subseed_strength", "cfg_scale", "eta", "denoising_strength", "s_min_uncond", "s_churn", "s_tmax", "s_tmin",
    "s_noise", "refiner_switch_at", "hr_scale", "image_cfg_scale", "initial_noise_multiplier",
})


def resolve_sampler(name: str | None, index: str | None, scheduler: str | None) -> tuple[str, str]:
    """A1111 1.10 sampler/scheduler resolution: combined names split, unknown sampler -> DPM++ 2M."""
    wanted = name or index or "Euler"
    for entry in SCHEDULERS:
        for label in [entry["label"], entry["name"], *(entry["aliases"] or [])]:
            if wanted.lower().endswith(" " + label.lower()) and _find_sampler(wanted[: -len(label) - 1]):
                wanted, scheduler = wanted[: -len(label) - 1], entry["label"]
                break
    sampler = _find_sampler(wanted) or A1111_SAMPLERS[0]
    sched = _find_scheduler(scheduler)
    if sched is None or sched["name"] == sampler["options"].get("scheduler"):
        return sampler["name"], "Automatic"
    return sampler["name"], sched["label"]


def _find_sampler(name: str) -> dict[str, Any] | None:
    """A sampler by name or alias (case-insensitive)."""
    low = name.lower()
    return next((s for s in A1111_SAMPLERS if low in [s["name"].lower(), *(a.lower() for a in s["aliases"])]), None)


def _find_scheduler(name: str | None) -> dict[str, Any] | None:
    """A scheduler by name, label or alias (case-insensitive)."""
    if not name:
        return None
    low = name.lower()
    for entry in SCHEDULERS:
        if low in [entry["name"], entry["label"].lower(), *(a.lower() for a in entry["aliases"] or [])]:
            return entry
    return None


def echo_parameters(body: dict[str, Any], defaults: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge a request into the defaults like pydantic v1 would: drop unknown keys, coerce numbers."""
    params = copy.deepcopy(defaults)
    errors: list[dict[str, Any]] = []
    for key, value in body.items():
        if key not in params:
            continue
        try:
            params[key] = _coerce(key, value)
        except (TypeError, ValueError):
            kind = "integer" if key in INT_FIELDS else "float" if key in FLOAT_FIELDS else "str"
            msg = "str type expected" if kind == "str" else f"value is not a valid {kind}"
            errors.append({"loc": ["body", key], "msg": msg, "type": f"type_error.{kind}"})
    if params.get("mask_blur") is not None:
        params["mask_blur_x"] = params["mask_blur_y"] = params["mask_blur"]
    return params, errors


def _coerce(key: str, value: Any) -> Any:
    """Coerce one field value; TypeError/ValueError when pydantic v1 would refuse it."""
    if value is None:
        return None
    if key in INT_FIELDS:
        if isinstance(value, bool | int | float | str):
            return int(float(value)) if isinstance(value, float) else int(value)
        raise TypeError(key)
    if key in FLOAT_FIELDS:
        if isinstance(value, bool | int | float | str):
            return float(value)
        raise TypeError(key)
    if key in ("prompt", "negative_prompt") and not isinstance(value, str):
        raise TypeError(key)
    return value
