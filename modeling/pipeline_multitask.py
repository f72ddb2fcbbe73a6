"""`transformers.Pipeline` for multi-task models, registered as ``"multitask-text-classification"``.

    import modeling  # registers the task
    from transformers import pipeline
    pipe = pipeline("multitask-text-classification", model="outputs/model")
    pipe(["what a day", "so tired"], batch_size=8)   # one {task: result} dict per text

Results are decoded by `postprocessing.decode_outputs` with the thresholds and temperatures stored in the config,
exactly as `predict.py` does. Only relative imports, so this file can travel with a saved model as custom code.
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .modeling_multitask import MultiTaskModel
from .postprocessing import decode_outputs, std_output_name
from .serving import serving_max_length

PIPELINE_TASK = "multitask-text-classification"


class MultiTaskTextClassificationPipeline(Pipeline):
    """Text(s) in, one ``{task: result}`` dict per text out (labels, probabilities, regression values).

    Call parameters: ``tasks`` (subset of task names to return), ``max_length`` (truncation, default and upper
    bound: the length the model was trained with, `config.max_length`), ``batch_size`` (handled by `Pipeline`).
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(self, tasks: list[str] | None = None, max_length: int | None = None, **kwargs: Any):
        if "mc_dropout" in kwargs:
            raise ValueError("mc_dropout is not supported by the pipeline (it runs the model in eval mode); use "
                             "predict.py --mc-dropout N, which also reports the spread of the passes")
        if kwargs:
            raise ValueError(f"unknown pipeline argument(s) {sorted(kwargs)}; allowed: tasks, max_length, batch_size")
        preprocess: dict[str, Any] = {}
        postprocess: dict[str, Any] = {}
        if max_length is not None:
            preprocess["max_length"] = int(max_length)
        if tasks is not None:
            known = self.model.config.task_names
            unknown = [t for t in tasks if t not in known]
            if unknown:
                raise ValueError(f"tasks: unknown task(s) {unknown}; allowed: {known}")
            postprocess["tasks"] = list(tasks)
        return preprocess, {}, postprocess

    def preprocess(self, inputs: str, max_length: int | None = None) -> dict[str, Any]:
        if not isinstance(inputs, str):
            raise ValueError(f"expected a text (str) or a list of texts, got {type(inputs).__name__}")
        config = self.model.config
        trained = serving_max_length(config.to_dict(), self.tokenizer)
        self.tokenizer.truncation_side = config.truncation_side
        encoded = self.tokenizer(inputs, truncation=True, max_length=min(max_length or trained, trained),
                                 return_tensors="pt")
        names = ("input_ids", "attention_mask", "token_type_ids")
        return {name: encoded[name] for name in names if name in encoded}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        output = self.model(**model_inputs)
        arrays = {name: value for name, value in output.logits.items()}
        if hasattr(self.model, "predicted_std"):  # gaussian_nll heads: their standard deviation, in the user's units
            arrays.update({std_output_name(n): v for n, v in self.model.predicted_std(output.log_variances).items()})
        return arrays

    def postprocess(self, model_outputs: dict[str, Any], tasks: list[str] | None = None) -> dict[str, Any]:
        config = self.model.config
        selected = [t for t in config.tasks if tasks is None or t["name"] in tasks]
        arrays = {key: value.float().numpy() for key, value in model_outputs.items()}
        return decode_outputs(selected, arrays, config.thresholds, config.temperatures)[0]


def register_pipeline() -> None:
    """Make ``pipeline("multitask-text-classification", model=...)`` resolve to this class."""
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK, pipeline_class=MultiTaskTextClassificationPipeline, pt_model=MultiTaskModel, type="text"
    )


if PIPELINE_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
    register_pipeline()

__all__ = ["PIPELINE_TASK", "MultiTaskTextClassificationPipeline", "register_pipeline"]
