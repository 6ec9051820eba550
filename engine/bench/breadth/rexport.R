# Export R data sets as CSV (date column first) for engine/bench/breadth/sources.py.
# Usage: Rscript rexport.R OUTDIR PKG:ITEM [PKG:ITEM ...]
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]
for (spec in args[-1]) {
  parts <- strsplit(spec, ":", fixed = TRUE)[[1]]
  pkg <- parts[1]; item <- parts[2]
  ok <- tryCatch({
    suppressMessages(suppressWarnings(requireNamespace(pkg, quietly = TRUE)))
    env <- new.env()
    data(list = item, package = pkg, envir = env)
    x <- get(item, envir = env)
    if (inherits(x, "timeSeries")) {
      frame <- data.frame(date = format(timeSeries::time(x), "%Y-%m-%d %H:%M:%S"),
                          as.data.frame(timeSeries::series(x)), check.names = FALSE)
    } else {
      frame <- as.data.frame(x)
      names(frame)[1] <- "date"
    }
    write.csv(frame, file.path(out, paste0(pkg, "_", item, ".csv")), row.names = FALSE)
    TRUE
  }, error = function(e) { message(spec, ": ", conditionMessage(e)); FALSE })
  cat(spec, if (ok) "ok" else "failed", "\n")
}
