"""Tasks: problems, outcome verifiers and step rules."""

from __future__ import annotations

from rlint.tasks.base import Problem, Task, TaskInputError


def load_task(task_config, limits=None) -> Task:
    """The task that ``params.yaml``'s ``task`` section describes; ``limits`` (``params.limits``) bounds a dataset's sizes."""
    if task_config.name == "arithmetic":
        from rlint.tasks.arithmetic import ArithmeticConfig, ArithmeticTask

        task = ArithmeticTask(
            ArithmeticConfig(
                seed=task_config.seed,
                min_steps=task_config.min_steps,
                max_steps=task_config.max_steps,
                operand_max=task_config.operand_max,
                value_max=task_config.value_max,
                operators=task_config.operators,
                heldout_share=task_config.heldout_share,
                modulus=getattr(task_config, "modulus", None),
            )
        )
        task.merge_empty_steps = bool(task_config.merge_empty_steps)  # None: off, the embedded task writes no blank lines
        return task
    from rlint.tasks.dataset import DatasetTask

    return DatasetTask(
        task_config.path,
        question_field=task_config.question_field,
        answer_field=task_config.answer_field,
        id_field=task_config.id_field,
        prompt_template=task_config.prompt_template,
        step_delimiter=task_config.step_delimiter,
        merge_empty_steps=True if task_config.merge_empty_steps is None else task_config.merge_empty_steps,
        heldout_share=task_config.heldout_share,
        seed=task_config.seed,
        heldout_path=task_config.heldout_path,
        limits=limits,
        repair_template=task_config.repair_template,
        repair_chat=task_config.repair_chat,
        chat_template=task_config.chat_template,
        system_prompt=task_config.system_prompt,
    )


__all__ = ["Problem", "Task", "TaskInputError", "load_task"]
