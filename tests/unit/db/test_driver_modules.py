"""The driver modules as a script loads them: modparams, capabilities, binding."""

from __future__ import annotations

import pytest

from sipserver.db.api import (
    CAP_ALL,
    CAP_INSERT_UPDATE,
    CAP_LAST_INSERTED_ID,
    CAP_QUERY,
    CAP_RAW_QUERY,
    CAP_REPLACE,
    CAP_UPDATE,
    db_bind,
)
from sipserver.lang.errors import CfgError
from sipserver.script import load_script_text


def _registry(cfg: str):
    return load_script_text(cfg + "route { exit; }\n").registry


def test_db_mysql_timeout_interval_modparam() -> None:
    reg = _registry('loadmodule "db_mysql.so"\n'
                    'modparam("db_mysql", "timeout_interval", 5)\n'
                    'modparam("db_mysql", "ping_interval", 600)\n')
    binding = db_bind(reg, "mysql://opensips:opensipsrw@localhost/opensips")
    assert binding.driver == "db_mysql" and binding.caps == CAP_ALL
    con = binding.connect()  # lazy: nothing is contacted yet
    assert con.timeout == 5
    assert reg.modules["db_mysql"].params["ping_interval"] == 600


def test_db_mysql_defaults_and_module_path() -> None:
    reg = _registry('loadmodule "/usr/lib/opensips/modules/db_mysql.so"\n')
    assert db_bind(reg, "mysql://h/d").connect().timeout == 2


def test_db_mysql_timeout_must_be_an_int() -> None:
    with pytest.raises(CfgError, match="takes an integer"):
        _registry('loadmodule "db_mysql.so"\nmodparam("db_mysql", "timeout_interval", "5s")\n')


def test_db_mysql_rejects_a_zero_timeout_at_start() -> None:
    reg = _registry('loadmodule "db_mysql.so"\nmodparam("db_mysql", "timeout_interval", 0)\n')
    mod = reg.modules["db_mysql"]
    with pytest.raises(ValueError, match="timeout_interval"):
        mod.exports.mod_init(mod)


def test_db_postgres_capabilities_as_1_6() -> None:
    reg = _registry('loadmodule "db_postgres.so"\n')
    for url in ("postgres://u:p@h/d", "postgresql://h:5433/d"):
        binding = db_bind(reg, url)
        assert binding.driver == "db_postgres"
        assert binding.caps & CAP_QUERY and binding.caps & CAP_RAW_QUERY
        assert binding.caps & CAP_UPDATE
        assert not binding.caps & (CAP_REPLACE | CAP_INSERT_UPDATE | CAP_LAST_INSERTED_ID)


def test_db_sqlite_bind_by_either_scheme(tmp_path) -> None:
    reg = _registry('loadmodule "db_sqlite.so"\n')
    for scheme in ("sqlite", "sqlite3"):
        assert db_bind(reg, f"{scheme}://{tmp_path}/x.db").driver == "db_sqlite"
