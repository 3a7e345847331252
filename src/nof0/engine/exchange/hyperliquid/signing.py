"""Hyperliquid L1 action signing (engine.md "Exchange providers / hyperliquid"): the "Agent" scheme.

The action is packed with msgpack, followed by the nonce (8 bytes, big endian) and the vault address
(a 0x00 byte when there is none, else 0x01 and its 20 bytes); the keccak of that is the
``connectionId`` of an EIP-712 ``Agent {source, connectionId}`` message in the domain
``Exchange / 1 / chainId 1337 / verifyingContract 0x0``, ``source`` "a" on mainnet and "b" on testnet.
The API wallet's key signs it; the venue recovers the signer and checks it may act for the account.

Crypto comes from ``eth-account`` (EIP-712 hashing, secp256k1 signing), packing from ``msgpack``;
nothing here is hand-written cryptography. The key lives in a :class:`Signer` whose repr never shows it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_hex

__all__ = ["Signer", "action_hash", "l1_typed_data", "sign_l1_action", "recover_l1_signer", "float_to_wire",
           "SigningError"]

_DOMAIN = {"chainId": 1337, "name": "Exchange", "verifyingContract": "0x0000000000000000000000000000000000000000",
           "version": "1"}
_TYPES = {
    "Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}],
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
}


class SigningError(ValueError):
    """A key or an action cannot be signed; never carries the key."""


class Signer:
    """An API wallet's key. ``address`` is public; the key is never printed."""

    __slots__ = ("_account", "address")

    def __init__(self, private_key: str) -> None:
        try:
            self._account = Account.from_key(private_key)
        except Exception:  # noqa: BLE001 - the library's message may quote the key
            raise SigningError("not a valid secp256k1 private key (expected 32 bytes as 0x-prefixed hex)") from None
        self.address: str = self._account.address

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    def sign(self, typed_data: dict[str, Any]) -> dict[str, Any]:
        signed = self._account.sign_message(encode_typed_data(full_message=typed_data))
        return {"r": to_hex(signed.r), "s": to_hex(signed.s), "v": signed.v}


def _address_bytes(address: str) -> bytes:
    raw = address[2:] if address.startswith("0x") else address
    try:
        out = bytes.fromhex(raw)
    except ValueError:
        raise SigningError(f"vault address {address!r} is not hex") from None
    if len(out) != 20:
        raise SigningError(f"vault address {address!r} is not 20 bytes")
    return out


def action_hash(action: dict[str, Any], vault_address: str | None, nonce: int) -> bytes:
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    data += b"\x00" if not vault_address else b"\x01" + _address_bytes(vault_address)
    return keccak(data)


def l1_typed_data(action: dict[str, Any], vault_address: str | None, nonce: int, *, mainnet: bool) -> dict[str, Any]:
    agent = {"source": "a" if mainnet else "b", "connectionId": action_hash(action, vault_address, nonce)}
    return {"domain": _DOMAIN, "types": _TYPES, "primaryType": "Agent", "message": agent}


def sign_l1_action(signer: Signer, action: dict[str, Any], vault_address: str | None, nonce: int, *,
                   mainnet: bool) -> dict[str, Any]:
    return signer.sign(l1_typed_data(action, vault_address, nonce, mainnet=mainnet))


def recover_l1_signer(action: dict[str, Any], signature: dict[str, Any], vault_address: str | None, nonce: int, *,
                      mainnet: bool) -> str:
    """The address that signed ``action`` (what the venue checks)."""
    message = encode_typed_data(full_message=l1_typed_data(action, vault_address, nonce, mainnet=mainnet))
    return Account.recover_message(message, vrs=(signature["v"], signature["r"], signature["s"]))


def float_to_wire(x: float) -> str:
    """A number as the venue wants it in an action: at most 8 decimals, no trailing zeros ("0.1", "100")."""
    text = f"{x:.8f}"
    if abs(float(text) - x) >= 1e-12:
        raise SigningError(f"{x!r} has more than 8 decimals")
    if text == "-0.00000000":
        text = "0"
    return f"{Decimal(text).normalize():f}"
