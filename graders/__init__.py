"""judgeforge.graders"""
