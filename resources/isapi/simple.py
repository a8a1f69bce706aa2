"""Minimal base classes for ISAPI extensions and filters (pywin32-compatible).

The host calls every init/request/terminate hook unconditionally; subclassing
these lets a script implement only the request handler it actually needs.
"""

from __future__ import annotations

__all__ = ["SimpleExtension", "SimpleFilter"]


class SimpleExtension:
    """Base class for simple ISAPI extensions."""

    def __init__(self):
        pass

    def GetExtensionVersion(self, vi):
        """Called once when the host loads the extension.

        Describes the extension to IIS using the class docstring.  ``vi`` is
        None when the host re-initialises after an InternalReloadException.
        """
        if vi is None:
            return
        vi.ExtensionDesc = self.__doc__

    def HttpExtensionProc(self, control_block):
        """Called for every request; subclasses must override this.

        Should return one of the isapicon.HSE_STATUS_* integers.
        """
        raise NotImplementedError(
            "a SimpleExtension subclass must implement HttpExtensionProc"
        )

    def TerminateExtension(self, status):
        """Called as the host unloads the extension; nothing to clean up."""
        return None


class SimpleFilter:
    """Base class for simple ISAPI filters."""

    # Subclasses must set this to a combination of isapicon.SF_NOTIFY_* flags.
    filter_flags: int | None = None

    def __init__(self):
        pass

    def GetFilterVersion(self, fv):
        """Called once when the host loads the filter.

        Registers ``filter_flags`` with IIS and describes the filter using the
        class docstring.  ``fv`` is None when the host re-initialises after an
        InternalReloadException (the flags are still checked in that case).
        """
        if self.filter_flags is None:
            raise RuntimeError("You must specify the filter flags")
        if fv is None:
            return
        fv.Flags = self.filter_flags
        fv.FilterDesc = self.__doc__

    def HttpFilterProc(self, fc):
        """Called for each notification the filter registered for.

        Subclasses must override this; it should return one of the
        isapicon.SF_STATUS_* integers (None means "next notification").
        """
        raise NotImplementedError(
            "a SimpleFilter subclass must implement HttpFilterProc"
        )

    def TerminateFilter(self, status):
        """Called as the host unloads the filter; nothing to clean up."""
        return None
