// SPDX-License-Identifier: GPL-2.0-only
/*
 * ntbh_selftest - provokes real kernel splats on request, so the harness's console monitor is
 * tested against what a kernel actually prints (not hand-written samples).
 *
 *   echo warn   > /sys/kernel/debug/ntbh_selftest/trigger   -> WARNING: ... with a backtrace
 *   echo atomic > /sys/kernel/debug/ntbh_selftest/trigger   -> BUG: sleeping function called
 *                                                               from invalid context
 */
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/string.h>

static struct dentry *selftest_dir;
static DEFINE_SPINLOCK(selftest_lock);
static DEFINE_MUTEX(selftest_mutex);

static void selftest_sleep_in_atomic(void)
{
	spin_lock(&selftest_lock);
	/* mutex_lock() may sleep: with CONFIG_DEBUG_ATOMIC_SLEEP this is reported. */
	mutex_lock(&selftest_mutex);
	mutex_unlock(&selftest_mutex);
	spin_unlock(&selftest_lock);
}

static ssize_t selftest_trigger_write(struct file *file, const char __user *buf,
				      size_t count, loff_t *ppos)
{
	char cmd[16] = {};

	if (count >= sizeof(cmd) || copy_from_user(cmd, buf, count))
		return -EINVAL;
	strim(cmd);

	if (!strcmp(cmd, "warn"))
		WARN(1, "ntbh_selftest: requested warning\n");
	else if (!strcmp(cmd, "atomic"))
		selftest_sleep_in_atomic();
	else
		return -EINVAL;
	return count;
}

static const struct file_operations selftest_trigger_fops = {
	.owner = THIS_MODULE,
	.write = selftest_trigger_write,
};

static int __init selftest_init(void)
{
	selftest_dir = debugfs_create_dir("ntbh_selftest", NULL);
	debugfs_create_file("trigger", 0200, selftest_dir, NULL, &selftest_trigger_fops);
	return 0;
}

static void __exit selftest_exit(void)
{
	debugfs_remove_recursive(selftest_dir);
}

module_init(selftest_init);
module_exit(selftest_exit);
MODULE_DESCRIPTION("epf-ntb-harness: provoke real splats for console monitor tests");
MODULE_LICENSE("GPL");
