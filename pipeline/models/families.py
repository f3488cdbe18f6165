"""One adapter per VLM family: how frames become grid tokens, and how a token block sits in a prompt.

SmolVLM/Idefics3 and LLaVA-OneVision use 1-D RoPE (any token count); Qwen2-VL/2.5-VL need mRoPE positions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from longwatch.pipeline.models.base import Prompt, Visual, VLMAdapter

if TYPE_CHECKING:
    import numpy as np
    import torch


def _video_inputs(processor, frames: np.ndarray, **kwargs) -> dict:
    """The family's own video preprocessing for one clip of frames [T, H, W, 3] uint8."""
    import numpy as np

    if not (isinstance(frames, np.ndarray) and frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8):
        raise ValueError(f"frames must be a uint8 array [T, H, W, 3]; got {getattr(frames, 'dtype', type(frames))} "
                         f"{getattr(frames, 'shape', '')}")
    return processor.video_processor(videos=[frames], return_tensors="pt", do_sample_frames=False, **kwargs)


class SmolVLMAdapter(VLMAdapter):
    """SmolVLM2 / Idefics3: SigLIP tower, pixel-shuffle connector, one square tile per video frame."""

    family = "smolvlm"
    frames_independent = True
    user_prefix = "<|im_start|>User: "
    assistant_prefix = "<end_of_utterance>\nAssistant:"

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        import torch

        inputs = _video_inputs(self.processor, frames)
        with torch.inference_mode():
            feats = self.model.model.get_image_features(inputs["pixel_values"].to(self.model.device, self.dtype),
                                                        inputs["pixel_attention_mask"].to(self.model.device))
        tokens = torch.cat(list(feats.pooler_output))  # [T * g * g, D]; pixel shuffle keeps row-major order
        T = len(frames)
        side = int(round((tokens.shape[0] // T) ** 0.5))
        return tokens.view(T, side, side, -1)

    def visual_segments(self, tokens: torch.Tensor, duration: float | None = None) -> list:
        # Each frame is wrapped like a SmolVLM video frame: <fake><global-img> tokens <fake>.
        image_id = self.model.config.image_token_id
        out: list = []
        for frame in tokens:
            out += ["<fake_token_around_image><global-img>", Visual(frame.reshape(-1, frame.shape[-1]), image_id),
                    "<fake_token_around_image>"]
        return out


class QwenVLAdapter(VLMAdapter):
    """Qwen2-VL / Qwen2.5-VL: 2x2-merged patch tokens with 3-D (t, h, w) mRoPE positions."""

    family = "qwen2_vl"
    user_prefix = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assistant_prefix = "<|im_end|>\n<|im_start|>assistant\n"

    def __init__(self, model, processor, name: str = ""):
        super().__init__(model, processor, name)
        self.family = "qwen2_5_vl" if "2_5" in model.config.model_type else "qwen2_vl"
        self.merge = model.config.vision_config.spatial_merge_size

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        import torch

        # The reference per-frame pixel cap (qwen-vl-utils), which transformers will make the default.
        inputs = _video_inputs(self.processor, frames, cap_pixels_per_frame=True)
        grid = inputs["video_grid_thw"]
        with torch.inference_mode():
            feats = self.model.model.get_video_features(inputs["pixel_values_videos"].to(self.model.device, self.dtype),
                                                        grid.to(self.model.device))
        t, h, w = (int(x) for x in grid[0])
        return torch.cat(list(feats.pooler_output)).view(t, h // self.merge, w // self.merge, -1)

    def visual_segments(self, tokens: torch.Tensor, duration: float | None = None) -> list:
        t, h, w, D = tokens.shape
        vis = Visual(tokens.reshape(-1, D), self.model.config.video_token_id, grid=(t, h, w), duration=duration)
        return ["<|vision_start|>", vis, "<|vision_end|>"]

    def video_grid_thw(self, prompt: Prompt) -> torch.Tensor:
        """Each visual run as the `video_grid_thw` row a native video of that grid would have (pre-merge units)."""
        import torch

        return torch.tensor([[t, h * self.merge, w * self.merge] for t, h, w in (v.grid for v in prompt.visuals)],
                            dtype=torch.long)

    def position_ids(self, prompt: Prompt) -> torch.Tensor:
        """[3, 1, L] mRoPE positions, computed by the model's own rule for videos of the injected grids."""
        import torch

        if not prompt.visuals:
            return super().position_ids(prompt).unsqueeze(0).expand(3, 1, -1)
        types = torch.zeros_like(prompt.input_ids, dtype=torch.int)
        for start, vis in zip(prompt.starts, prompt.visuals):
            types[0, start:start + len(vis.embeds)] = 2  # 2 = video in the model's modality encoding
        kwargs = {}
        if self.family == "qwen2_5_vl":
            # Seconds per temporal grid step, so temporal positions follow real time (tokens_per_second).
            kwargs["second_per_grid_ts"] = torch.tensor([(v.duration or v.grid[0]) / v.grid[0] for v in prompt.visuals])
        positions, _ = self.model.model.get_rope_index(prompt.input_ids, mm_token_type_ids=types,
                                                       video_grid_thw=self.video_grid_thw(prompt), **kwargs)
        return positions


class LlavaOneVisionAdapter(VLMAdapter):
    """LLaVA-OneVision: SigLIP tower, projector, 2x bilinear pooling per video frame, one newline per video."""

    family = "llava_onevision"
    frames_independent = True
    user_prefix = "<|im_start|>user "
    assistant_prefix = "<|im_end|>\n<|im_start|>assistant\n"

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        import torch

        inputs = _video_inputs(self.processor, frames)
        cfg = self.model.config
        with torch.inference_mode():
            feats = self.model.model.get_video_features(
                inputs["pixel_values_videos"].to(self.model.device, self.dtype),
                vision_feature_layer=cfg.vision_feature_layer,
                vision_feature_select_strategy=cfg.vision_feature_select_strategy)
        tokens = feats.pooler_output[0, :-1]  # the last row is the learned newline, added back per block
        T = len(frames)
        side = int(round((tokens.shape[0] // T) ** 0.5))
        return tokens.reshape(T, side, side, -1)

    def visual_segments(self, tokens: torch.Tensor, duration: float | None = None) -> list:
        import torch

        # Natively a video is its frames' tokens then one image_newline; each block ends the same way.
        newline = self.model.model.image_newline.detach()[None].to(tokens.dtype)
        embeds = torch.cat([tokens.reshape(-1, tokens.shape[-1]), newline])
        return [Visual(embeds, self.model.config.video_token_id, separators=1)]


ADAPTERS: dict[str, type[VLMAdapter]] = {
    "smolvlm": SmolVLMAdapter, "idefics3": SmolVLMAdapter,
    "qwen2_vl": QwenVLAdapter, "qwen2_5_vl": QwenVLAdapter,
    "llava_onevision": LlavaOneVisionAdapter,
}
