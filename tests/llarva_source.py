"""LLARVA's own text code, restated for tests, on its own data shapes.

Dantong88/LLARVA at commit 6d41f57 (the public release) and the pre-release builder
Dantong88/LLaRVA_new at d2a7455. Each function below copies the lines it names (format
strings verbatim, the same numpy calls in the same order, the same global `np.random`); it is
what the tests compare our formats with, so nothing in it imports llara_edge.

- `generate_episode`: sim/data/generate_vision-action-tuning_anns.py:8-28,49-84 (one
  episode's records of the RLBench training annotations, before the shuffle).
- `Agent`: sim/agents/llarva_bc/llarva_agent.py:59-70,72-104 (prompt), 137-179 (parsing).
- `conversation_prompt`: llava/conversation.py:32-63 (SeparatorStyle.TWO) with the system
  strings of conv_vicuna_v1 (:242-252, training `--version v1`) and conv_llava_v1 (:325-335,
  the agent's `conv_mode = 'llava_v1'`).
- `rtx_without_trace_prompt`, `find_tj`, `add_trace`: LLaRVA_new process_dataset/
  large_scale_training/new_action_version/rtx_without_trace.py:108-114,
  rtx_with_trace.py:10-38,66-71.
- `episode`: RLBench-shaped low_dim_obs items (7 joint positions and velocities, float64, and
  `gripper_open` 1.0 / 0.0) with the values that test the number forms: exact zeros, values
  that round to 0.0 and -0.0, negatives, 4-decimal ties.
"""

# The lines copied from LLARVA keep their own style (getattr, .format with an unused argument,
# long format strings), so that they read as the source does.
# ruff: noqa: B009, E501, F523, UP032
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

DEFAULT_IMAGE_TOKEN = "<image>"  # llava/constants.py
VICUNA_V1_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                    "The assistant gives helpful, detailed, and polite answers to the user's "
                    "questions.")
LLAVA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                   "The assistant gives helpful, detailed, and polite answers to the human's "
                   "questions.")


@dataclass
class Item:
    """One RLBench low_dim_obs observation (the attributes the builder reads)."""

    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    gripper_open: float


def episode(rng: np.random.Generator, n: int) -> list[Item]:
    """`n` observations of a Franka arm (positions in its joint ranges, rad; velocities rad/s)."""
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    items = []
    for k in range(n):
        vel = rng.normal(0.0, 0.4, 7)
        vel[k % 7] = 0.0  # an exact zero
        vel[(k + 1) % 7] = float(rng.choice([3e-5, -3e-5, 0.00005, -0.00015, 1.23455]))
        pos = home + 0.05 * k * np.sin(np.arange(7) + k)
        items.append(Item(pos, vel, 1.0 if k < n // 2 else 0.0))
    return items


# --- sim/data/generate_vision-action-tuning_anns.py ---------------------------------------
def get_curr_action(item):
    joint_velocities = getattr(item, "joint_velocities")
    gripper_open = getattr(item, "gripper_open")
    temp_arr = np.append(joint_velocities, gripper_open)
    return np.round(temp_arr, 4).tolist()


def get_curr_dict(total_count, image_path, prev_5_positions, curr_action, variation_des):
    conversations = [{
        "value": f"<image>\nYou are a Franka robot using the joint control. The task is \"{variation_des}\", and the previous five (including current) steps are {prev_5_positions}. Can you predict action of the next 1 step?",
        "from": "human"}, {"from": "gpt", "value": f"The next action step: {curr_action}"}]
    curr_dict = {"id": total_count, "image": image_path, "conversations": conversations}
    return curr_dict


def apply_noise(position):
    noise = np.random.normal(0, 0.01, position.shape)
    noisy_position = position + noise
    return noisy_position


def generate_episode(data: list[Item], variation_des: list[str], episode: str) -> list[dict]:
    """The body of `generate` for one episode (add_gripper_joint_pos False, add_noise True)."""
    final_json_content, total_count, camera_view = [], 0, "front_rgb"
    prev_5_positions = [[0, 0, 0, 0, 0, 0, 0]] * 5
    counter = 0
    for item_idx, item in enumerate(data):
        try:
            curr_action = get_curr_action(data[item_idx + 1])
        except IndexError:
            continue
        curr_position = getattr(item, "joint_positions")
        curr_position = np.round(apply_noise(curr_position), 4).tolist()
        prev_5_positions.append(curr_position)
        prev_5_positions.pop(0)
        image_path = f"{episode}/{camera_view}/{counter}.png"
        final_json_content.append(
            get_curr_dict(total_count, image_path, prev_5_positions, curr_action,
                          variation_des[0]))
        counter += 1
        total_count += 1
    return final_json_content


# --- sim/agents/llarva_bc/llarva_agent.py -------------------------------------------------
class Agent:
    """LLaRVAAgent's text side: reset, the prompt of act(), and its two parsers."""

    def __init__(self, with_visual_trace: bool = False):
        self.with_visual_trace = with_visual_trace  # the release forces False (line 49)

    def reset(self) -> None:
        self.prev_actions_buffer = [[0, 0, 0, 0, 0, 0, 0]] * 5

    def normalize_and_add_gaussian(self, action):
        noise = np.random.normal(0, 0.01, action.shape)
        noisy_action = action + noise
        return noisy_action

    def prompt(self, joint_pos: np.ndarray, task_goal: str) -> str:
        instruction = task_goal
        robot_type = "Franka"
        control_type = "joint control"
        pred_num_step = 1
        current_pose = joint_pos
        current_pose = self.normalize_and_add_gaussian(current_pose)
        current_pose = np.round(current_pose, 4).tolist()
        self.prev_actions_buffer.append(current_pose)
        self.prev_actions_buffer = self.prev_actions_buffer[1:]
        if self.with_visual_trace:
            qs = 'You are a {} using the {}. The task is \"{}\", and the previous five (including current) steps are {}. Can you predict the 2D visual trace of the end effector and the action of the next 1 step?'.format(
                robot_type, control_type, instruction, self.prev_actions_buffer, pred_num_step)
        else:
            qs = 'You are a {} robot using the {}. The task is \"{}\", and the previous five (including current) steps is {}, can you predict action of the next {} step?'.format(
                robot_type, control_type, instruction, self.prev_actions_buffer, pred_num_step)
        return DEFAULT_IMAGE_TOKEN + "\n" + qs  # mm_use_im_start_end False

    @staticmethod
    def clean_string(input_string):
        cleaned_string = re.sub(r"[^0-9\-.]", "", input_string)
        return cleaned_string

    def parse(self, outputs: str) -> list[float]:
        """Lines 140-162 (raises where the agent raises; None where it prints no match)."""
        outputs = outputs.strip()
        if not self.with_visual_trace:
            numbers_str = re.search(r"\[(.*?)\]", outputs).group(1)
            numbers = [self.clean_string(x) for x in numbers_str.split(",")]
            if len(numbers) == 7:
                numbers.append(1.0)
            return [float(x) for x in numbers]
        match = re.search(r"The next action step: \[([^\]]+)\]", outputs)
        if not match:
            return None
        return [float(x) for x in match.group(1).split(", ")]


# --- llava/conversation.py ----------------------------------------------------------------
def conversation_prompt(system: str, messages: list[tuple[str, str | None]]) -> str:
    """Conversation.get_prompt, SeparatorStyle.TWO, sep " ", sep2 "</s>"."""
    seps = [" ", "</s>"]
    ret = system + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += role + ": " + message + seps[i % 2]
        else:
            ret += role + ":"
    return ret


# --- LLaRVA_new process_dataset/large_scale_training/new_action_version -------------------
def rtx_without_trace_prompt(robot_type, control_type, instruction, prev_action, pred_num_step):
    return '<image>\nYou are a {} robot using the {}. The task is \"{}\", and the previous five (including current) steps is {}, can you predict action of the next {} step?'.format(
        robot_type, control_type, instruction, prev_action, pred_num_step)


def find_tj(tj_ann, idx, mode="ann"):
    trajectory = []
    tjs = tj_ann[mode][idx:]
    for _p in tjs:
        if _p == [-1]:
            continue
        try:
            trajectory.append([round(_p[0]), round(_p[1])])
        except (TypeError, IndexError):
            return []
    if len(trajectory) == 0:
        return []
    dp_ratio = 30 / len(trajectory)
    stride = math.floor(1 / dp_ratio)
    tj_new = []
    if stride <= 1:
        tj_new = trajectory
    else:
        start = 0
        while start < len(trajectory):
            tj_new.append(trajectory[start])
            start += stride
    trajectory = tj_new
    return trajectory


def add_trace(question: str, answer: str, tj) -> tuple[str, str]:
    """rtx_with_trace.py:66-71 on one annotation's question and answer values."""
    question = question[:-1] + " and the trajectories of the end effector?"
    answer = answer + ". The trajectory: {}".format(tj)
    return question, answer


def source_answers(n_episodes: int = 3, seed: int = 0) -> list[str]:
    """Answers as LLARVA's repositories write them on `episode` data: the training builder's
    "The next action step: [8 values]" for every step, and, for every other step, the
    pre-release trace form (that answer + ". The trajectory: " + find_tj of a trajectory with
    lost points; sometimes "[]", more than 30 points in others)."""
    rng = np.random.default_rng(seed)
    out = []
    for e in range(n_episodes):
        items = episode(rng, 6 + 5 * e)
        for k, item in enumerate(items[1:]):
            answer = f"The next action step: {get_curr_action(item)}"
            out.append(answer)
            if k % 2:
                n = int(rng.choice([0, 3, 17, 45, 75]))
                ann = [[-1] if rng.random() < 0.1 else
                       [float(rng.uniform(0, 320)), float(rng.uniform(0, 240))] for _ in range(n)]
                out.append(add_trace("?", answer, find_tj({"ann": ann}, 0))[1])
    return out
