"""Names of the on-demand jobs one feature asks another to run (``bot.scheduler.request_job``): the name is the
contract between the feature that asks and the one that declares the job, so neither imports the other."""

GROUP_MEMBERS_JOB = "group_members"  # read a group's members now (handlers.directory runs it, 绑定 asks for it)
