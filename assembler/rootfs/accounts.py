"""/etc/passwd, /etc/group and home directories, written instead of adduser scripts."""

from __future__ import annotations

from assembler.rootfs.tree import Tree
from assembler.spec.document import NOBODY, NOGROUP, ROOT, ROOT_GROUP, Accounts, Group, User


def users_and_groups(accounts: Accounts) -> tuple[list[User], list[Group]]:
    users = [ROOT, NOBODY] + [u for u in accounts.users if u.username not in ("root", "nobody")]
    groups = [ROOT_GROUP, NOGROUP]
    groups += [g for g in accounts.groups if g.groupname not in ("root", "nogroup")]
    known_gids = {g.gid for g in groups}
    for u in users:  # a user whose primary group was not declared gets one of its own name
        if u.gid not in known_gids:
            groups.append(Group(u.username, u.gid))
            known_gids.add(u.gid)
    return users, groups


def _merge(master: bytes | None, lines: list[str]) -> str:
    """base-passwd's master entries first (as its postinst would copy them), then ours."""
    if master is None:
        return "".join(lines)
    base = [ln + "\n" for ln in master.decode("utf-8", "replace").splitlines() if ln.strip()]
    names = {ln.split(":", 1)[0] for ln in base}
    return "".join(base + [ln for ln in lines if ln.split(":", 1)[0] not in names])


def _own_dir(tree: Tree, path: str, mode: int) -> None:
    """The image's /root and /tmp are the builder's: a package's symlink there is replaced."""
    existing = tree.get(path)
    if existing is not None and existing.kind == "symlink":
        tree.warnings.append(f"{existing.origin}: ships /{path} as a symlink to "
                             f"{existing.link!r}; replaced by the directory the image needs "
                             f"(mode {mode:04o}).")
        tree.remove(path)
    tree.add_dir(path, mode)


def write_accounts(tree: Tree, accounts: Accounts, passwd_master: bytes | None = None,
                   group_master: bytes | None = None) -> None:
    users, groups = users_and_groups(accounts)
    passwd = _merge(passwd_master, [f"{u.username}:x:{u.uid}:{u.gid}:{u.gecos}:"
                                    f"{u.home}:{u.shell}\n" for u in users])
    group = _merge(group_master, [f"{g.groupname}:x:{g.gid}:{','.join(g.members)}\n"
                                  for g in groups])
    tree.add_file("etc/passwd", passwd.encode(), 0o644, replace=True)
    tree.add_file("etc/group", group.encode(), 0o644, replace=True)
    for path, mode in (("root", 0o700), ("tmp", 0o1777)):
        _own_dir(tree, path, mode)
    for u in users:
        if u.uid in (0, 65534):
            continue
        tree.add_dir(u.home.lstrip("/"), 0o755, u.uid, u.gid)


def run_as(accounts: Accounts) -> str:
    """The config's User: numeric uid:gid, so no passwd lookup is needed at runtime."""
    who = accounts.run_as
    if not who:
        return ""
    users, _ = users_and_groups(accounts)
    for u in users:
        if u.username == who:
            return f"{u.uid}:{u.gid}"
    return who
