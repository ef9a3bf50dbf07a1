"""e2e-convert: E2E jet datasets (parquet or HDF5, any of the layouts the E2E producers
write) -> one HDF5 file of the e2e jet-image format (data/format/FORMAT.md). Run it through
data/e2e-convert, which picks the project's Python environment (pyarrow and h5py from
PyPI, made by launch/install-deps.sh). data/CONVERT.md describes it.

Modules, one job each:
  cli            the command line, exit statuses, signals
  convert        one run: open the sources, plan the output, stream the rows, rename
  detect         the kind of a source from its first bytes (parquet, HDF5)
  parquet_footer a parquet footer's row-group index, and small footers for a few row groups
  parquet_source parquet files: columns, spans of row groups, decoding nested lists
  hdf5_source    HDF5 files: datasets, spans of rows
  columns        which source column is the image, the mass, pt, ieta, iphi; extras
  layout         channel-first or channel-last, the image shape
  meta           channel names and kinds, per-jet scalars and their scales
  decode         one batch into the output's buffers, checked; its statistics
  plausible      per-file plausibility checks (MeV masses, negative masses, empty images)
  workers        decoding processes and the shared batch buffers
  writers        the output layouts (dense; a sparse layout plugs in beside it)
  output         the partial file, syncing, the rename
  progress       the progress bar
"""

PROG = "e2e-convert"
GENERATOR = "e2e-convert 2"
