"""The hook mechanism: per-instance method wrappers that observe and never interfere.

A hook replaces a method on ONE runtime object (an instance attribute that
shadows the class's method), never on the class: objects the user did not
hand to :func:`~meshwatch.integrations.agent_hypervisor.instrument` are
untouched, and removing the attribute restores the original exactly.

The wrapper calls the original with the caller's arguments, unchanged, and
returns its result or lets its exception propagate, unchanged. Observing
happens after the call (``after``), or when the call raises (``on_error``),
and optionally needs a look before it (``before``). Every one of those runs
inside :meth:`Hooks.guard`: an exception there is counted
(``meshwatch_events_dropped_total{component="agent_hypervisor",reason="hook_error"}``
and :attr:`Hooks.errors`), logged at most once a minute per hook, and never
reaches the runtime.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from types import FunctionType, MethodType
from typing import Any, Final, TypeVar

from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop

COMPONENT: Final = "agent_hypervisor"
HOOK_ERROR: Final = "hook_error"
MARK: Final = "__meshwatch_hook__"

_log = logging.getLogger("meshwatch.integrations.agent_hypervisor")
_rate_limited = RateLimitedLog(_log)

T = TypeVar("T")
# A look before the call, given its arguments; what it returns is handed to ``after``.
Before = Callable[[tuple[Any, ...], dict[str, Any]], Any]
After = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], None]
OnError = Callable[[BaseException, tuple[Any, ...], dict[str, Any]], None]
# A state machine's move: (context, the object, old state, new state).
Changed = Callable[[Any, Any, Any, Any], None]

_FAILED = object()  # ``before`` raised: skip ``after``, the look is unknown


def _next_compaction(live: int) -> int:
    """When a registry of hooked objects holding ``live`` entries is compacted next: when it doubles.

    Dead objects' entries go then, so a registry stays within twice its live
    objects (and at least 1,024 entries, so a small one is not compacted often).
    """
    return max(1024, 2 * live)


class AlreadyInstrumentedError(ValueError):
    """The object's method already carries a meshwatch hook (instrumented twice)."""


class Hooks:
    """The hooks of one instrumentation handle: installs, counts errors, removes them all.

    Installed hooks are remembered by weak reference, so a runtime object that
    the runtime itself forgets (a finished saga's step) is not kept alive by
    meshwatch; the registries are compacted when they double.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (the object, the method name, id of the wrapper) of wrap() and wrap_async(): the
        # wrapper itself is not kept, since its closure holds the object and would keep it alive.
        self._installed: list[tuple[weakref.ref[Any], str, int]] = []
        self._compact_at = _next_compaction(0)
        self._errors: dict[str, int] = {}
        # (class, method name) -> wrap_state's shared wrapper and the objects it hooks
        self._states: dict[tuple[type, str], _StateHooks] = {}
        self.active = True

    # -- error accounting ---------------------------------------------------------

    @property
    def errors(self) -> dict[str, int]:
        """Exceptions raised inside meshwatch hooks so far, per hook name."""
        with self._lock:
            return dict(self._errors)

    def failed(self, hook: str, method: str | None = None) -> None:
        """Count and (rate-limited) log an exception inside ``hook``; call from an except block.

        ``failed(owner, method)`` names the hook ``owner.method``: the wrappers
        pass the two parts so the name is only built when something failed.
        """
        if method is not None:
            hook = f"{hook}.{method}"
        with self._lock:
            self._errors[hook] = self._errors.get(hook, 0) + 1
        record_event_drop(COMPONENT, HOOK_ERROR)
        _rate_limited.warning(
            f"hook:{hook}",
            "meshwatch hook %s raised; the runtime call went on unaffected",
            hook,
            exc_info=True,
        )

    def guard(self, hook: str, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)``, or None when it raises (counted and logged, never propagated)."""
        try:
            return fn(*args)
        except Exception:
            self.failed(hook)
            return None

    # -- installing and removing --------------------------------------------------

    def _install(
        self, obj: Any, name: str, wrapper: Callable[..., Any], original: Callable[..., Any]
    ) -> None:
        """Put ``wrapper`` on ``obj`` in place of ``original`` (what ``obj.name`` was)."""
        _refuse_hooked(obj, name, original)
        if type(wrapper) is FunctionType and not getattr(wrapper, MARK, False):
            setattr(wrapper, MARK, True)  # wrap_async's, built by functools.wraps
        setattr(obj, name, wrapper)
        installed = self._installed
        installed.append((weakref.ref(obj), name, id(wrapper)))  # atomic under the GIL
        if len(installed) >= self._compact_at:
            with self._lock:
                if installed is self._installed:  # no other thread compacted it meanwhile
                    self._installed = [entry for entry in installed if entry[0]() is not None]
                    self._compact_at = _next_compaction(len(self._installed))

    def wrap(
        self,
        obj: Any,
        name: str,
        *,
        after: After | None = None,
        before: Before | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """Hook the synchronous method ``obj.name``."""
        original = getattr(obj, name)
        wrapper = _sync_wrapper(self, original, type(obj).__name__, name, before, after, on_error)
        self._install(obj, name, wrapper, original)

    def wrap_state(
        self,
        obj: Any,
        name: str,
        changed: Changed,
        context: Any,
    ) -> None:
        """Hook the state-machine method ``obj.name``: ``changed`` runs when ``obj.state`` moved.

        ``changed(context, obj, old, new)`` runs after a call that left
        ``obj.state`` different from what it was before (``is`` comparison:
        states are enum members); a call that raises is passed through
        untouched, as :meth:`wrap` does without ``on_error``.

        The saga engine hooks every saga and every step it creates, so this is
        on the runtime's call path once per object. Nothing is built per
        object but a tuple and a bound method: the wrapper is one function per
        handle, class and method (:func:`_state_wrapper`), bound to
        ``(obj, original, changed, context)``. A closure per object, with its
        cells and its ``__dict__``, cost about 2 us per object (timeit).
        """
        self._state(type(obj), name).hook(obj, changed, context)

    def _state(self, cls: type, name: str) -> _StateHooks:
        """The state hooks of ``cls.name`` (made the first time)."""
        key = (cls, name)
        state = self._states.get(key)
        if state is None:
            with self._lock:
                state = self._states.get(key)
                if state is None:
                    state = self._states[key] = _StateHooks(self, cls, name)
        return state

    def state_hooker(self, cls: type, name: str) -> Callable[[Any, Changed, Any], None]:
        """``hook(obj, changed, context)``: :meth:`wrap_state` for objects of class ``cls``.

        For the runtime's thread, which hooks every saga and every step it
        creates: the class's hooks are looked up once, not per object.
        """
        return self._state(cls, name).hook

    def state_unhooker(self, cls: type, name: str) -> Callable[[Any], None]:
        """``unhook(obj)``: take :meth:`wrap_state`'s hook off ``obj.name`` (see :class:`_StateHooks`)."""
        return self._state(cls, name).unhook

    def wrap_async(
        self,
        obj: Any,
        name: str,
        *,
        after: After | None = None,
        before: Before | None = None,
    ) -> None:
        """Hook the coroutine method ``obj.name`` (the wrapper is a coroutine function too)."""
        original: Callable[..., Awaitable[Any]] = getattr(obj, name)
        hook = f"{type(obj).__name__}.{name}"
        guard_failed = self.failed

        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return await original(*args, **kwargs)
            look = None
            if before is not None:
                try:
                    look = before(args, kwargs)
                except Exception:
                    guard_failed(hook)
                    look = _FAILED
            result = await original(*args, **kwargs)
            if after is not None and look is not _FAILED:
                try:
                    after(result, args, kwargs, look)
                except Exception:
                    guard_failed(hook)
            return result

        self._install(obj, name, wrapper, original)

    def remove_all(self) -> None:
        """Remove every hook still installed; wrappers someone kept a reference to pass through.

        A ``wrap()`` or ``wrap_async()`` hook is told by its id: it never comes
        off by itself, so while the object lives the hook lives (in its
        ``__dict__``) and the id is still its. A state hook can come off while
        the object lives (:meth:`state_unhooker`), and then its id may be
        reused by whatever is put there next, so it is told by what it is: a
        bound method of this handle's shared wrapper. An object whose state
        hook came off already is left as it is, whatever its attribute is now.
        """
        self.active = False
        with self._lock:
            installed, self._installed = self._installed, []
            states = list(self._states.values())
        for ref, name, wrapper_id in installed:
            obj = ref()
            if obj is not None and id(obj.__dict__.get(name)) == wrapper_id:
                delattr(obj, name)
        for state in states:
            state.remove_all()


def _refuse_hooked(obj: Any, name: str, original: Any) -> None:
    """Raise :class:`AlreadyInstrumentedError` when ``original`` (``obj.name``) is a meshwatch hook.

    A meshwatch wrapper already on the instance is what ``getattr`` found as
    ``original``: a plain function, since instance attributes are not bound,
    or :meth:`Hooks.wrap_state`'s bound method, whose function carries the
    mark. So the check reads no ``obj.__dict__`` (on a fresh object that
    builds the dict, about 0.25 us), and asks a bound method nothing (a
    missing attribute looked up through a bound method raises and catches an
    AttributeError inside ``getattr``, about 0.75 us): every saga and every
    step is hooked, so this is on the runtime's call path.
    """
    kind = type(original)
    if (kind is FunctionType and getattr(original, MARK, False)) or (
        kind is MethodType and getattr(original.__func__, MARK, False)
    ):
        raise AlreadyInstrumentedError(
            f"{type(obj).__name__}.{name} of {obj!r} is already instrumented; "
            "close the other handle first"
        )


class _StateHooks:
    """One handle's :meth:`Hooks.wrap_state` hooks of one class's method: the wrapper, the objects.

    The objects hooked are remembered by weak reference, keyed by id, so
    that ``unhook`` can forget one at once. A hooked object is in a
    reference cycle (its ``__dict__`` holds the bound method, whose tuple
    holds the object): while the hook is on, only the cyclic garbage
    collector can free it. So an object that can make no further move is
    unhooked, and then it is freed by its reference count, as upstream's own
    are, and its weak reference goes with its entry, before it: a registry
    entry kept until a compaction (as for :meth:`Hooks.wrap`) was a weak
    reference and a tuple per saga and per step that lived on into the
    collector's older generations (in-process A/B: without any registry the
    saga step was 0.025-0.05x cheaper).
    """

    def __init__(self, owner: Hooks, cls: type, name: str) -> None:
        self.owner, self.cls, self.name = owner, cls, name
        self.function = getattr(cls, name)
        self.shared = _state_wrapper(owner, cls.__name__, name, self.function)
        self.hooked: dict[int, weakref.ref[Any]] = {}  # id(obj) -> obj, weakly
        self.compact_at = _next_compaction(0)
        # Closures, not methods: what they read are cells, not attributes of this object
        # (the runtime's thread runs them for every saga and step: about 30 bytecodes less).
        self.hook = self._hooker()
        self.unhook = self._unhooker()

    def _hooker(self) -> Callable[[Any, Changed, Any], None]:
        """``hook(obj, changed, context)``: the shared wrapper, bound to that, put on ``obj``."""
        state, cls, name, function, shared = self, self.cls, self.name, self.function, self.shared
        wrap_state = self.owner.wrap_state
        ref = weakref.ref

        def hook(obj: Any, changed: Changed, context: Any) -> None:
            if type(obj) is not cls:  # a subclass: its own wrapper (its own signature)
                wrap_state(obj, name, changed, context)
                return
            original = getattr(obj, name)
            if type(original) is not MethodType or original.__func__ is not function:
                _refuse_hooked(obj, name, original)  # (the class's own method is no hook)
            setattr(obj, name, MethodType(shared, (obj, original, changed, context)))
            hooked = state.hooked
            # A dead object's entry may be under a reused id: this one replaces it.
            hooked[id(obj)] = ref(obj)  # atomic under the GIL
            if len(hooked) >= state.compact_at:
                state._compact(hooked)

        return hook

    def _unhooker(self) -> Callable[[Any], None]:
        """``unhook(obj)``: take the hook off ``obj``, if what is there is still this handle's own.

        Whatever else is there (nothing, a user's attribute, another handle's
        hook: a bound method of another function) is left alone. A wrapper
        someone kept still works, since it holds the original itself.
        Meant to be called from inside the hook's ``changed``, so an error is
        counted as that hook's. Reads the attribute with ``getattr``, not
        through ``__dict__``, whose first read on an instance builds the dict.
        """
        state, name, shared = self, self.name, self.shared

        def unhook(obj: Any) -> None:
            hook = getattr(obj, name)
            if type(hook) is MethodType and hook.__func__ is shared:
                state.hooked.pop(id(obj), None)
                # not contextlib.suppress: a context manager cost about 2 us more here
                try:  # noqa: SIM105
                    delattr(obj, name)
                except AttributeError:  # a close() on another thread was first
                    pass

        return unhook

    def _compact(self, hooked: dict[int, weakref.ref[Any]]) -> None:
        """Drop the entries of objects that died hooked (never unhooked)."""
        with self.owner._lock:
            if hooked is self.hooked:  # no other thread compacted it meanwhile
                live = {key: ref for key, ref in list(hooked.items()) if ref() is not None}
                self.hooked = live
                self.compact_at = _next_compaction(len(live))

    def remove_all(self) -> None:
        """Take off every hook still on (:meth:`Hooks.remove_all`)."""
        with self.owner._lock:
            hooked, self.hooked = self.hooked, {}
        name, shared = self.name, self.shared
        for ref in list(hooked.values()):
            obj = ref()
            if obj is None:
                continue
            hook = obj.__dict__.get(name)
            if type(hook) is MethodType and hook.__func__ is shared:
                # the runtime's thread may have unhooked it since the look
                with contextlib.suppress(AttributeError):
                    delattr(obj, name)


def _sync_wrapper(
    hooks: Hooks,
    original: Callable[..., Any],
    owner: str,
    method: str,
    before: Before | None,
    after: After | None,
    on_error: OnError | None,
) -> Callable[..., Any]:
    """The wrapper :meth:`Hooks.wrap` installs: a plain closure, the cheapest thing to call.

    A callable object would be cheaper to build but costs about a microsecond
    more per call (Python's ``__call__`` slot), which is on every runtime
    call; building the closure is paid once per hooked object. ``__wrapped__``
    keeps ``inspect.signature`` and ``inspect.unwrap`` showing the original.
    """

    failed = hooks.failed
    hook = (owner, method)

    if before is None and after is not None:
        # The common case, no look before the call: fewer checks on every call (a try
        # block costs nothing until it catches).
        if isinstance(original, MethodType):
            exact = _exact(original.__func__, _AFTER_ONLY, skip_first=True)
            if exact is not None:
                # Bound to the object, as upstream's method is: a call with the wrong number
                # of arguments counts ``self`` in its message, as upstream's would.
                wrapper = exact(original, hooks, after, on_error, failed, owner, method)
                return MethodType(_with_original(wrapper, original.__func__), original.__self__)
        wrapper = _generic(_AFTER_ONLY)(original, hooks, after, on_error, failed, owner, method)
    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not hooks.active:
                return original(*args, **kwargs)
            look = None
            if before is not None:
                try:
                    look = before(args, kwargs)
                except Exception:
                    failed(*hook)
                    look = _FAILED
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                if on_error is not None and look is not _FAILED:
                    try:
                        on_error(exc, args, kwargs)
                    except Exception:
                        failed(*hook)
                raise
            if after is not None and look is not _FAILED:
                try:
                    after(result, args, kwargs, look)
                except Exception:
                    failed(*hook)
            return result

    return _with_original(wrapper, original)


def _state_wrapper(
    hooks: Hooks, owner: str, method: str, unbound: Callable[..., Any]
) -> Callable[..., Any]:
    """:meth:`Hooks.wrap_state`'s wrapper, shared by every object of one class it hooks.

    Bound (``types.MethodType``) to ``(obj, original, changed, context)``, so
    ``obj.transition(new)`` calls ``wrapper(that tuple, new)``. ``__wrapped__``
    is the class's function: ``inspect.signature`` of the bound wrapper then
    shows the original's (the first parameter dropped, as for any method).
    """
    failed = hooks.failed
    exact = _exact(unbound, _STATE, skip_first=True)  # the template's _mw_hooked replaces self
    factory = exact if exact is not None else _generic(_STATE)
    return _with_original(factory(hooks, failed, owner, method, _FAILED), unbound)


# Wrappers with the original's own parameters, compiled once per upstream function.
#
# A ``(*args, **kwargs)`` wrapper packs the caller's arguments into a tuple and a
# dict, then unpacks them again to call the original (CALL_FUNCTION_EX, which
# turns the dict back into keyword names): measured on the elevation's two
# hooked calls, in one process, alternating, that is about 0.13x of upstream's
# ~8 us where a wrapper with the exact parameters costs 0.05x. So for a method
# whose parameters are all plain (positional-or-keyword, keyword-only) the
# wrapper is compiled from its signature: the same names, the same default
# objects, and the original called with each one passed on. The original sees
# the same values either way (a default passed on is the default object
# itself), and a call with wrong arguments fails with the message upstream
# would give (the wrapper carries the original's name). A method with
# ``*args``, ``**kwargs`` or positional-only parameters keeps the generic
# wrapper. ``after`` and ``on_error`` get the arguments as one positional tuple,
# keyword-only ones in the dict, which :func:`argument` reads either way.
_AFTER_ONLY: Final = """
def _mw_factory(_mw_original, _mw_hooks, _mw_after, _mw_on_error, _mw_failed, _mw_owner, _mw_method):
    def wrapper({first}{params}):
        try:
            _mw_result = _mw_original({call})
        except BaseException as _mw_exc:
            if _mw_on_error is not None and _mw_hooks.active:
                try:
                    _mw_on_error(_mw_exc, {args}, {kwargs})
                except Exception:
                    _mw_failed(_mw_owner, _mw_method)
            raise
        if _mw_hooks.active:
            try:
                _mw_after(_mw_result, {args}, {kwargs}, None)
            except Exception:
                _mw_failed(_mw_owner, _mw_method)
        return _mw_result
    return wrapper
"""
_STATE: Final = """
def _mw_factory(_mw_hooks, _mw_failed, _mw_owner, _mw_method, _mw_FAILED):
    def wrapper({first}{params}):
        _mw_obj, _mw_original, _mw_changed, _mw_context = _mw_hooked
        try:
            _mw_old = _mw_obj.state
        except Exception:
            _mw_failed(_mw_owner, _mw_method)
            _mw_old = _mw_FAILED
        _mw_result = _mw_original({call})
        if _mw_hooks.active and _mw_old is not _mw_FAILED:
            try:
                _mw_new = _mw_obj.state
                if _mw_new is not _mw_old:
                    _mw_changed(_mw_context, _mw_obj, _mw_old, _mw_new)
            except Exception:
                _mw_failed(_mw_owner, _mw_method)
        return _mw_result
    return wrapper
"""
_PLAIN_KINDS: Final = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
# (the upstream function, template) -> its compiled factory, or None (no exact wrapper);
# (None, template) -> the template's generic factory. Bounded by the hook points.
_factories: dict[tuple[Any, str], Callable[..., Callable[..., Any]] | None] = {}
_factories_lock = threading.Lock()


def _cached(
    key: tuple[Any, str], make: Callable[[], Callable[..., Callable[..., Any]] | None]
) -> Callable[..., Callable[..., Any]] | None:
    """``_factories[key]``, made by ``make()`` the first time (once, whatever the threads)."""
    try:
        return _factories[key]
    except KeyError:
        pass
    with _factories_lock:
        if key not in _factories:
            _factories[key] = make()
        return _factories[key]


def _exact(
    function: Callable[..., Any], template: str, *, skip_first: bool
) -> Callable[..., Callable[..., Any]] | None:
    """The factory of ``template``'s wrapper with ``function``'s parameters, or None (generic).

    ``skip_first`` drops the first parameter (``self``: the templates have their own).
    """
    return _cached((function, template), lambda: _compile(function, template, skip_first))


def _compile(
    function: Any, template: str, skip_first: bool
) -> Callable[..., Callable[..., Any]] | None:
    if type(function) is not FunctionType:
        return None
    parameters = list(inspect.signature(function, follow_wrapped=False).parameters.values())
    if skip_first:
        if not parameters or parameters[0].kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            return None
        parameters = parameters[1:]
    if any(p.kind not in _PLAIN_KINDS or p.name.startswith("_mw_") for p in parameters):
        return None
    defaults: dict[str, Any] = {}
    params, call, positional, keywords = [], [], [], []
    starred = False
    for p in parameters:
        text = p.name
        if p.default is not inspect.Parameter.empty:
            defaults[f"_mw_d{len(defaults)}"] = p.default
            text = f"{p.name}=_mw_d{len(defaults) - 1}"
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            if not starred:
                params.append("*")
                starred = True
            call.append(f"{p.name}={p.name}")
            keywords.append(f"{p.name!r}: {p.name}")
        else:
            call.append(p.name)
            positional.append(p.name + ",")
        params.append(text)
    make = _build(
        template,
        defaults,
        f"<meshwatch hook of {function.__qualname__}>",
        # an exact method wrapper is bound to the object, as upstream's method is
        first="_mw_hooked, " if template is _STATE else "_mw_self, ",
        params=", ".join(params),
        call=", ".join(call),
        args=f"({' '.join(positional)})",
        kwargs="{" + ", ".join(keywords) + "}",
    )

    def factory(*args: Any) -> Callable[..., Any]:
        wrapper = make(*args)
        wrapper.__name__ = function.__name__
        wrapper.__qualname__ = function.__qualname__
        return wrapper

    return factory


def _generic(template: str) -> Callable[..., Callable[..., Any]]:
    """``template``'s wrapper for a callable whose parameters cannot be copied.

    The same source as the exact wrappers, with ``*args, **kwargs`` for the
    parameters, so both kinds run the same hook logic (it is written once).
    """
    factory = _cached(
        (None, template),
        lambda: _build(
            template,
            {},
            "<meshwatch hook>",
            # a generic after-only wrapper is called as it is, not bound
            first="_mw_hooked, " if template is _STATE else "",
            params="*_mw_args, **_mw_kwargs",
            call="*_mw_args, **_mw_kwargs",
            args="_mw_args",
            kwargs="_mw_kwargs",
        ),
    )
    assert factory is not None  # a generic wrapper always compiles
    return factory


def _build(
    template: str, defaults: dict[str, Any], filename: str, **parts: str
) -> Callable[..., Callable[..., Any]]:
    """Compile ``template`` filled with ``parts``; its ``_mw_factory``.

    ``parts["first"]`` is the wrapper's own first parameter, before the
    copied ones: ``_mw_hooked`` for a state wrapper (bound to its hook
    tuple), ``_mw_self`` for an exact method wrapper, none for a generic one.
    """
    source = template.format(**parts)
    namespace: dict[str, Any] = dict(defaults)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["_mw_factory"]  # type: ignore[no-any-return]


def _with_original(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    """``wrapper`` carrying the original as ``__wrapped__`` and meshwatch's mark, in one dict.

    ``__wrapped__`` keeps ``inspect.signature`` and ``inspect.unwrap`` showing
    the original. A function's first attribute builds its ``__dict__``, so
    setting the two one by one costs about twice as much, on every object
    hooked (every saga step).
    """
    wrapper.__dict__ = {MARK: True, "__wrapped__": original}
    return wrapper


def argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    """The argument called ``name`` (``index``-th positional, self excluded), or None."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


__all__ = ["COMPONENT", "HOOK_ERROR", "AlreadyInstrumentedError", "Hooks", "argument"]
