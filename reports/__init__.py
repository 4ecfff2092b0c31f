"""Pure rendering: report data in, markdown text, chart PNGs, .docx/.xlsx bytes and archive zips out.

Nothing here knows about DingTalk, the database or the clock; handlers fill ``reports.model`` and call:

* ``reports.weekly``          客户项目周报 (markdown for chat, .docx), client and internal variants
* ``reports.digest``          leaders' digest and ``project_health`` (🟢/🟡/🔴)
* ``reports.reminders``       overdue / due-soon reminder texts and escalations
* ``reports.documents``       the standard's forms (.docx) and the ``DOCUMENTS`` registry
* ``reports.registers_xlsx``  the registers as an Excel workbook
* ``reports.archive``         the project archive zip with its index
* ``reports.charts``          matplotlib charts (Figure API, bundled CJK font)
* ``reports.pool``            how to run all of the above off the event loop

Importing the package is cheap: matplotlib and python-docx load on first use.
"""
