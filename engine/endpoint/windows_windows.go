package endpoint

// windowsPaths: on Windows, drive letters and UNC paths are local.
const windowsPaths = true
