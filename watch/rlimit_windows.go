package watch

// openFilesLimit: Windows has no such limit for the watcher
// (ReadDirectoryChangesW needs one handle per watched directory).
func openFilesLimit() string { return "unknown" }
