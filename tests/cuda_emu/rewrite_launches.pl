#!/usr/bin/perl
# Turns a .cu file into host C++ for the CUDA emulation (tests/cuda_emu/README.md): each
# kernel launch k<<<grid, block, shared, stream>>>(args) becomes
# cuda_emu_launch(CudaEmuLaunch(grid, block, shared, stream), "k", k, args) (a launch's
# <<<...>>> on one line; its arguments may go on), and a #line keeps the .cu file's
# name and lines in messages (__FILE__ too). Nothing else changes.
# usage: rewrite_launches.pl IN.cu OUT.cpp
use strict;
use warnings;
my ($in, $out) = @ARGV;
die "usage: rewrite_launches.pl IN.cu OUT.cpp\n" unless defined $out;
open(my $fh, '<', $in) or die "rewrite_launches.pl: $in: $!\n";
my @lines = <$fh>;
close $fh;
my $text = "#line 1 \"$in\"\n";
my $n = 0;
for my $line (@lines) {
    $n += ($line =~ s/([A-Za-z_][A-Za-z0-9_]*(?:<[A-Za-z0-9_ ]+>)?)<<<(.*?)>>>\(/cuda_emu_launch(CudaEmuLaunch($2), "$1", $1, /g);
    die "rewrite_launches.pl: $in: a launch this script cannot rewrite: $line" if $line =~ /<<</;
    $text .= $line;
}
open(my $oh, '>', "$out.tmp") or die "rewrite_launches.pl: $out.tmp: $!\n";
print $oh $text;
close $oh or die "rewrite_launches.pl: $out.tmp: $!\n";
rename("$out.tmp", $out) or die "rewrite_launches.pl: $out: $!\n";
