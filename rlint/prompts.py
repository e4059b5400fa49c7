"""A problem's prompt as the model reads it: plain text, or wrapped in the model's own chat template.

``task.chat_template: true`` (datasets) sends each prompt to an instruct model the way it was
trained to read one: ``tokenizer.apply_chat_template`` over an optional system message
(``task.system_prompt``) and the prompt as the user's message, with the assistant's turn opened.
Rollout, evaluate and bootstrap's evaluation encode prompts through :func:`encode_prompt`.
"""

from __future__ import annotations

from rlint.config import ConfigError


def chat_messages(prompt: str, system_prompt: str | None) -> list[dict]:
    """The messages one prompt becomes.

    >>> chat_messages("2+2?", None), chat_messages("2+2?", "Be brief.")[0]
    ([{'role': 'user', 'content': '2+2?'}], {'role': 'system', 'content': 'Be brief.'})
    """
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": prompt}]


def check_chat_template(task, tokenizer, checkpoint) -> None:
    """``task.chat_template`` needs a tokenizer that has one: refuse before anything is sampled or written."""
    if getattr(task, "chat_template", False) and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"task.chat_template: true, but the tokenizer of {checkpoint} has no chat template (set task.chat_template: false)")


def encode_prompt(engine, task, prompt: str) -> list[int]:
    """Token ids of ``prompt`` for ``engine``'s model: the chat-wrapped text when the task asks for it."""
    if not getattr(task, "chat_template", False):
        return engine.encode(prompt)
    text = engine.tokenizer.apply_chat_template(chat_messages(prompt, getattr(task, "system_prompt", None)), tokenize=False, add_generation_prompt=True)
    return engine.tokenizer(text, add_special_tokens=False)["input_ids"]
