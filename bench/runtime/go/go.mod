module remorabench

go 1.19
