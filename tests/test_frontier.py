"""Emulator snapshots and frontier starts on the real emulator (nes-py 9, Python >= 3.13), through make_mario_env with
repeat_jump, show_buttons and sticky actions on; and their one-line refusals where they cannot run."""

import csv
import math
import pickle
import shutil

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_train import ENV, TINY, run_cli, train, train_here

from sb3_mario import DDQN, make_mario_env, make_mario_vec_env
from sb3_mario.enjoy import play
from sb3_mario.envs import LEGACY_BACKEND, ButtonsObservation, FrontierStarts, is_restart, restore_snapshot, take_snapshot
from sb3_mario.envs.actions import BUTTON_BITS
from sb3_mario.envs.frontier import FRONTIER_MIN_X, FRONTIER_PER_CELL, _Entry
from sb3_mario.errors import EnvConfigError
from sb3_mario.evaluation import evaluate_protocol
from sb3_mario.plot import plot_runs, read_monitor

needs_snapshots = pytest.mark.skipif(LEGACY_BACKEND, reason="nes-py 8 (Python < 3.13) has no snapshots: see the refusal test")
SETTINGS = dict(repeat_jump=True, show_buttons=True, sticky_actions=0.5, noop_max=0)
LEVEL_START_X = 40


def frontier_of(env):
    while not isinstance(env, FrontierStarts):
        env = env.env
    return env


@needs_snapshots
def test_a_restored_snapshot_replays_the_original_trajectory():
    env = make_mario_env(**SETTINGS, max_episode_steps=60, stall_steps=40, seed=3)
    backend = env.unwrapped
    while backend._a_frames < 2:  # [right, A] held: the snapshot falls while A is down on the frame loop's side
        obs, *_ = env.step(1)
    assert backend._a_frames >= 2 and backend.last_pressed & BUTTON_BITS["A"]
    snapshot = take_snapshot(env)
    rng_state = backend.np_random.bit_generator.state
    steps_before = env.get_wrapper_attr("_elapsed_steps")
    actions = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0] * 8
    original = []
    for action in actions:
        step = env.step(action)
        original.append(step)
        if step[2] or step[3]:
            break
    assert original[-1][3] and not original[-1][2]  # the time limit ends it, which the snapshot's step count decides
    assert len(original) == 60 - steps_before

    # a second env of the same settings, somewhere else in its own episode, continues exactly from the snapshot
    twin = make_mario_env(**SETTINGS, max_episode_steps=60, stall_steps=40, seed=11)
    for _ in range(7):
        twin.step(0)
    restored_obs = restore_snapshot(twin, snapshot)
    np.testing.assert_array_equal(restored_obs, obs)
    twin.unwrapped.np_random.bit_generator.state = rng_state  # the same sticky draws
    a_index = ButtonsObservation.BITS.index(BUTTON_BITS["A"])
    assert (
        restored_obs[-1, :4, 4 * a_index : 4 * a_index + 4] == 255
    ).all()  # show_buttons' A cell is lit on the restored frame
    for k, action in enumerate(actions[: len(original)]):
        obs2, reward2, terminated2, truncated2, info2 = twin.step(action)
        obs1, reward1, terminated1, truncated1, info1 = original[k]
        np.testing.assert_array_equal(obs2, obs1)
        assert (reward2, terminated2, truncated2, info2) == (reward1, terminated1, truncated1, info1), k
    assert original[0][1] != -15 and original[0][1] == twin_first_reward(snapshot, rng_state)
    env.close()
    twin.close()


def twin_first_reward(snapshot, rng_state):
    """The first reward after restoring ``snapshot`` into a fresh env that has only been reset (gym-super-mario-bros'
    bookkeeping would give -15 there if the snapshot did not carry it)."""
    env = make_mario_env(**SETTINGS, max_episode_steps=60, stall_steps=40, seed=0)
    restore_snapshot(env, snapshot)
    env.unwrapped.np_random.bit_generator.state = rng_state
    reward = env.step(1)[1]
    env.close()
    return reward


@needs_snapshots
def test_include_rng_repeats_the_sticky_draws_by_itself():
    env = make_mario_env(**SETTINGS, seed=5)
    for _ in range(30):
        env.step(1)
    snapshot = take_snapshot(env, include_rng=True)
    first = [env.step(a)[0] for a in (1, 0, 1, 1, 0)]
    restore_snapshot(env, snapshot)
    again = [env.step(a)[0] for a in (1, 0, 1, 1, 0)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    env.close()


@needs_snapshots
def test_snapshots_refuse_other_ids_and_ids_without_stages(tmp_path, run_main):
    env = make_mario_env(seed=0)
    snapshot = take_snapshot(env)
    other = make_mario_env("SuperMarioBros-1-2-v0", seed=0)
    with pytest.raises(EnvConfigError, match="cannot be restored into 'SuperMarioBros-1-2-v0'"):
        restore_snapshot(other, snapshot)
    stacked_differently = make_mario_env(frame_stack=2, seed=0)
    for different in (stacked_differently, make_mario_env(max_episode_steps=100, seed=0)):
        with pytest.raises(EnvConfigError, match="other wrappers"):
            restore_snapshot(different, snapshot)
    for env_id in ("SuperMarioBros-v0", "SuperMarioBrosRandomStages-v0"):
        game = make_mario_env(env_id, seed=0)
        with pytest.raises(EnvConfigError, match="single-stage env id") as error:
            take_snapshot(game)
        assert "\n" not in str(error.value)
        with pytest.raises(EnvConfigError, match="frontier starts need a single-stage env id"):
            make_mario_env(env_id, frontier_starts=0.5)
        with pytest.raises(EnvConfigError, match="frontier starts need a single-stage env id"):  # before any worker
            make_mario_vec_env(env_id, frontier_starts=0.5)
        game.close()
    for e in (env, other, stacked_differently):
        e.close()
    # the training CLI's refusal (its main, called here), in one line, before any env worker starts
    refused = train_here(run_main, tmp_path, "--env", "SuperMarioBros-v0", "-n", 100, "--vec-env", "subproc", "-params",
                         "env_kwargs:{frontier_starts: 0.5}")  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("error: frontier starts need a single-stage env id")


@pytest.mark.skipif(not LEGACY_BACKEND, reason="the refusal of nes-py 8, which only Python < 3.13 installs")
def test_nes_py_8_refuses_snapshots_and_frontier_starts_in_one_line(tmp_path):
    env = make_mario_env(seed=0)
    with pytest.raises(
        EnvConfigError, match=r"emulator snapshots need nes-py >= 9's emulator snapshots, installed on Python >= 3.13"
    ) as error:
        take_snapshot(env)
    assert "\n" not in str(error.value)
    with pytest.raises(EnvConfigError, match="frontier starts need nes-py >= 9"):
        make_mario_env(frontier_starts=0.5)
    # the training CLI says it in one line, before starting any env worker: `make train` (the 1-1 entry, the recipe,
    # has frontier starts) is refused with how to train here instead
    for extra in ([], ["-params", "env_kwargs:{frontier_starts: 0.5}", "--env", "SuperMarioBros-1-2-v0"]):
        refused = train(tmp_path, "-n", 100, "--vec-env", "subproc", *extra)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith("error: frontier starts need nes-py >= 9")
        assert refused.stderr.endswith("(train without them: -conf ddqn_hop, or -params 'env_kwargs:{frontier_starts: 0}')\n")
    # ...and the hop set trains on nes-py 8
    hop = train(tmp_path, "-n", 64, "-conf", "ddqn_hop", "--eval-freq", "0", "-params", "learning_starts:32",
                "buffer_size:100", "env_kwargs:{max_episode_steps: 50}", "autocast_bf16:False")  # fmt: skip
    assert hop.returncode == 0, hop.stderr[-2000:]
    env.close()


@needs_snapshots
def test_restart_share_over_400_resets_is_q_and_restarts_continue_the_emulator():
    q, n = 0.3, 400
    env = make_mario_env(**SETTINGS, frontier_starts=q, max_episode_steps=400, seed=0)
    frontier = frontier_of(env)
    while len(frontier.cells) < 5:  # fill the archive: the held hop goes far with repeat_jump
        _, _, terminated, truncated, _ = env.step(1)
        if terminated or truncated:
            env.reset()
    assert all(1 <= len(entries) <= FRONTIER_PER_CELL for entries in frontier.cells.values())
    assert min(frontier.cells) * 64 >= FRONTIER_MIN_X
    restarts = 0
    for i in range(n):
        obs, info = env.reset()
        x_backend = env.unwrapped.nes._x_position
        assert info["start_x"] == info["x_pos"] == x_backend  # the emulator is where the episode says it starts
        if is_restart(info["start_x"]):
            restarts += 1
            assert obs.shape == (4, 84, 84) and (obs == obs[-1]).all()  # the stack refilled with the restart's frame
        else:
            assert info["start_x"] == LEVEL_START_X
        if i % 40 == 0:
            _, _, _, _, info = env.step(1)
            assert info["start_x"] == x_backend and info["x_pos"] >= x_backend - 8
    bound = 4 * math.sqrt(n * q * (1 - q))  # 4 standard deviations: fails by chance once in ~16,000 runs
    assert abs(restarts - n * q) <= bound, restarts
    assert frontier.restarts == restarts and sum(frontier.starts.values()) == restarts
    env.close()


@needs_snapshots
def test_restarts_are_seeded_and_leave_the_sticky_draws_alone():
    def trace(frontier_starts):
        env = make_mario_env(**SETTINGS, frontier_starts=frontier_starts, max_episode_steps=60, seed=2)
        starts, pressed, first_restart = [], [], None
        env.unwrapped.pressed_log = pressed
        for _ in range(480):  # 8 episodes of 60 steps: the archive passes FRONTIER_MIN_X in the 5th, 4 restarts follow
            _, _, terminated, truncated, info = env.step(1)
            if terminated or truncated:
                starts.append(env.reset()[1]["start_x"])
                if first_restart is None and is_restart(starts[-1]):
                    first_restart = len(pressed)
        env.close()
        return starts, pressed, first_restart

    with_restarts = trace(0.5)
    assert with_restarts == trace(0.5)  # seeded: the same restarts, from the same snapshots
    starts, pressed, first_restart = with_restarts
    assert first_restart is not None and sum(map(is_restart, starts)) >= 2
    no_restarts, plain_pressed, _ = trace(0.0)
    assert all(x == LEVEL_START_X for x in no_restarts)
    # archiving snapshots and drawing the coin leave the sticky draws alone: the same bytes reach the emulator
    # (sticky 0.5 decides half of them) until the first restart puts Mario elsewhere
    assert len(plain_pressed) > first_restart > 100 and pressed[:first_restart] == plain_pressed[:first_restart]


@needs_snapshots
@pytest.mark.parametrize("rule", ["frontier", "death", "death_rate"])
def test_rules_draw_cells_by_their_weights(rule):
    env = make_mario_env(frontier_starts=1.0, frontier_rule=rule, seed=0)
    frontier = frontier_of(env)
    frontier.cells = {c: [_Entry(None, np.zeros(1), {"x_pos": c * 64})] for c in (2, 6, 10)}  # type: ignore[arg-type]
    frontier.deaths.update({7: 3, 11: 1})
    frontier.starts.update({10: 3})
    frontier.passes.update({2: 9, 6: 5, 10: 1})
    # frontier: halves every 4 cells back from the furthest; death: deaths in the cell and the 2 after it, + 0.1;
    # both divided by sqrt(1 + restarts from the cell); death_rate: the same deaths divided by 1 + passes instead
    weights = np.array(
        {
            "frontier": [2.0**-2, 2.0**-1, 1.0 / 2.0],
            "death": [0.1, 3.1, 1.1 / 2.0],
            "death_rate": [0.1 / 10, 3.1 / 6, 1.1 / 2],
        }[rule]
    )
    expected = weights / weights.sum()
    drawn = np.zeros(3)
    for _ in range(4000):
        drawn[[2, 6, 10].index(frontier._choose().info["x_pos"] // 64)] += 1
    np.testing.assert_allclose(drawn / 4000, expected, atol=0.03)
    env.close()


@needs_snapshots
def test_death_rate_counts_a_restart_as_a_pass_of_its_cell():
    # death_rate divides by passes, not restarts: a restarted episode passes its start cell again on the real emulator
    env = make_mario_env(**SETTINGS, frontier_starts=1.0, frontier_rule="death_rate", max_episode_steps=400, seed=0)
    frontier = frontier_of(env)
    while len(frontier.cells) < 5:
        _, _, terminated, truncated, _ = env.step(1)
        if terminated or truncated:
            env.reset()
    passed = 0
    for _ in range(20):
        before = frontier.passes.copy()
        _, info = env.reset()
        assert is_restart(info["start_x"]) and info["start_x"] // 64 in frontier.cells
        for _ in range(8):  # [right] until Mario is on the ground (a sticky A from the snapshot may lift him first)
            _, _, terminated, truncated, _ = env.step(0)
            if frontier._episode.offered or terminated or truncated:
                break
        for cell in frontier._episode.offered:
            assert info["start_x"] // 64 <= cell <= info["start_x"] // 64 + 1
            assert frontier.passes[cell] == before[cell] + 1
            passed += 1
    assert frontier.restarts == 20 and passed >= 15, passed
    env.close()


@needs_snapshots
def test_before_death_anchors_lie_two_seconds_before_deaths_of_their_own_episode():
    env = make_mario_env(frontier_starts=0.5, frontier_rule="before_death", max_episode_steps=300, seed=0)
    frontier = frontier_of(env)
    assert frontier.before_death_steps == 30  # 120 frames at frame skip 4
    pairs = []
    rng = np.random.default_rng(0)
    for _ in range(1100):  # random [right] / [right, A] without repeat_jump: deaths at goombas, pipes and pits
        anchors = len(frontier.anchors)
        _, _, terminated, truncated, info = env.step(int(rng.random() < 0.5))
        if len(frontier.anchors) > anchors:
            assert terminated and not info["flag_get"]  # anchors come from deaths only
            pairs.append((frontier.anchors[-1].info, info))
        if terminated or truncated:
            env.reset()
    assert len(pairs) >= 3 and frontier.restarts >= 1
    for anchor, death in pairs:
        # the game clock ticks every 24 frames: 30-60 steps (120-240 frames) are 5-10 ticks
        assert 4 <= anchor["time"] - death["time"] <= 11, (anchor, death)
        assert anchor["x_pos"] <= death["x_pos"] + 16
    env.close()


@needs_snapshots
def test_archive_counts_survive_a_pickle_and_weigh_the_next_env_as_they_did():
    """What a checkpoint saves of the archive (counts and the restart generator, not the snapshots), restored into a
    fresh env: the same counts, the same next coin, and the restored env archives snapshots again as it plays."""
    import pickle

    env = make_mario_env(**SETTINGS, max_episode_steps=40, frontier_starts=1.0, frontier_rule="death", seed=2)
    frontier = frontier_of(env)
    for _ in range(6):
        env.reset()
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(1)
            done = terminated or truncated
    counts = pickle.loads(pickle.dumps(frontier.archive_counts()))
    assert sum(counts["passes"].values()) > 0 and sum(counts["starts"].values()) >= 1
    fresh = make_mario_env(**SETTINGS, max_episode_steps=40, frontier_starts=1.0, frontier_rule="death", seed=9)
    restored = frontier_of(fresh)
    restored.set_archive_counts(counts)
    assert (restored.passes, restored.deaths, restored.starts) == (frontier.passes, frontier.deaths, frontier.starts)
    assert restored._rng.random() == frontier._rng.random()
    assert not restored.cells  # no snapshots: the first reset is a level start ...
    fresh.reset()
    for _ in range(25):  # [right]: Mario walks past x 128 on the ground
        if any(fresh.step(0)[2:4]):
            break
    assert restored.cells  # ... and the episode archives snapshots again
    env.close()
    fresh.close()


@pytest.fixture(scope="module")
def frontier_run(tmp_path_factory):
    if LEGACY_BACKEND:
        pytest.skip("frontier starts need nes-py 9 (Python >= 3.13)")
    tmp = tmp_path_factory.mktemp("frontier")
    result = run_cli(  # in a SubprocVecEnv worker, which keeps the archive in its own process
        "sb3_mario.train", "-f", tmp / "logs", "--verbose", "0", "-n", 500, "--eval-freq", 0, "--save-freq", 250,
        "--save-replay-buffer", "--vec-env", "subproc",
        *TINY, "env_kwargs:{max_episode_steps: 60, repeat_jump: true, frontier_starts: 1.0}", timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, tmp / "logs" / "ddqn" / f"{ENV}_1"


@pytest.mark.slow  # end to end: frontier_run's training, 3 protocol episodes (~480 steps each) and enjoy
def test_a_model_trained_with_q_1_plays_every_episode_from_the_level_start(frontier_run, tmp_path, monkeypatch):
    _, run = frontier_run
    episodes = read_monitor(run)
    assert episodes["restart"].sum() >= 3  # it trained from restarts
    # TensorBoard and plot count them apart from the episodes that began at the level's start
    events = EventAccumulator(str(next((run / "tensorboard").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert {"rollout/restart_share", "rollout/restart_flag_rate"} <= set(events.Tags()["scalars"])
    assert events.Scalars("rollout/restart_share")[-1].value == pytest.approx(episodes["restart"][-100:].mean(), abs=0.05)
    assert plot_runs([run], tmp_path / "curves.png").stat().st_size > 10_000
    model = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert model.mario_env["frontier_starts"] == 1.0  # the saved env spec keeps the option
    protocol = evaluate_protocol(model, model.mario_env, n_episodes=3, seed=7)
    assert [e.start_x for e in protocol.episodes] == [LEVEL_START_X] * 3
    stats, _ = play(model, model.mario_env, episodes=3, noop_max=5, max_steps=40)
    assert [s["start_x"] for s in stats] == [LEVEL_START_X] * 3
    folder = tmp_path / "pretrained"
    folder.mkdir()
    shutil.copy(run / f"{ENV}.zip", folder / f"{ENV}.zip")
    monkeypatch.setattr("sb3_mario.pretrained._folder", lambda: folder)
    from sb3_mario.pretrained import load_pretrained

    assert load_pretrained(ENV).mario_env["frontier_starts"] == 0.0
    played = run_cli("sb3_mario.enjoy", run / f"{ENV}.zip", "--protocol", "--episodes", 1, "--seed", 123, timeout=600)
    assert played.returncode == 0, played.stderr[-2000:]


@pytest.mark.slow  # end to end: frontier_run's training, then export, enjoy and a resumed training
def test_a_zip_saved_with_frontier_starts_replays_exports_and_resumes(frontier_run, tmp_path):
    _, shared = frontier_run
    run = tmp_path / "logs" / "ddqn" / shared.name
    shutil.copytree(shared, run)
    exported = tmp_path / "exported.zip"
    result = run_cli("sb3_mario.export", run / f"{ENV}.zip", exported)
    assert result.returncode == 0, result.stderr[-2000:]
    replayed = run_cli("sb3_mario.enjoy", exported, "--episodes", 1, timeout=600)
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    before = read_monitor(run)
    resumed = run_cli(
        "sb3_mario.train", "-i", run, "-n", 300, "--vec-env", "dummy", "--eval-freq", 0, "--verbose", 0,
        "-params", "env_kwargs:{frontier_starts: 0.5, frontier_rule: death}", timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert after.mario_env["frontier_starts"] == 0.5 and after.mario_env["frontier_rule"] == "death"
    assert yaml.safe_load((run / "config.yml").read_text())[ENV]["env_kwargs"]["frontier_starts"] == 0.5
    new = read_monitor(run)["restart"][len(before["restart"]) :]
    # the archives' counts come back with the buffer; the snapshots do not (nes-py's state does not pickle), so the
    # resumed run's first episode is a start, and restarts come back once episodes refill cells
    assert "restored the frontier archive's counts of 1 env(s)" in resumed.stdout
    assert len(new) >= 3 and not new[0]


@needs_snapshots
def test_two_envs_train_the_recipe_at_its_updates_per_env_step_each_with_its_own_archive(tmp_path):
    """``-conf ddqn_frontier --n-envs 2``: one gradient step per env transition after learning_starts, as with one
    env, and both worker processes restart episodes from archives they filled themselves."""
    result = run_cli(
        "sb3_mario.train", "-conf", "ddqn_frontier", "-f", tmp_path / "logs", "--verbose", "0", "-n", 300,
        "--n-envs", 2, "--vec-env", "subproc", "--eval-freq", 0, "--save-freq", 0, "--save-replay-buffer",
        "-params", "learning_starts:60", "buffer_size:2000", "batch_size:8", "max_hours:null",
        "env_kwargs:{max_episode_steps: 50, frontier_starts: 0.9, noop_max: 0}", timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "logs" / "ddqn" / f"{ENV}_1"
    model = DDQN.load(run / f"{ENV}.zip", device="cpu")
    assert (model.n_envs, model.train_freq.frequency, model._gradient_steps_per_env) == (2, 1, 1)
    assert model.num_timesteps == 300 and model._n_updates == 300 - 60  # one per transition after learning_starts
    for rank in (0, 1):  # each worker's Monitor CSV: its episodes' start x (after a "#{...}" line)
        rows = list(csv.DictReader((run / f"{rank}.monitor.csv").read_text().splitlines()[1:]))
        assert sum(is_restart(float(row["start_x"])) for row in rows) >= 1, rank
    # the final save keeps both archives' counts beside the buffer, and -i gives each env its own back
    counts = pickle.loads((run / "checkpoints" / "frontier_counts.pkl").read_bytes())
    assert len(counts) == 2 and all(sum(c["passes"].values()) > 0 for c in counts)
    resumed = run_cli("sb3_mario.train", "-i", run, "-n", 20, "--eval-freq", 0, "--verbose", 0, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    cells = sum(len(c["passes"]) for c in counts)
    assert f"restored the frontier archive's counts of 2 env(s) ({cells} cells passed)" in resumed.stdout
